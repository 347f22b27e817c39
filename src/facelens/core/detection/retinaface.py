"""RetinaFace (MobileNet-0.25) output decoding.

The network scores a fixed grid of square anchors (strides 8/16/32, two sizes each,
as in the reference PyTorch implementation's `PriorBox`) and regresses box and
landmark offsets from them with the usual variances (0.1 centre, 0.2 size).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from facelens.core.detection.boxes import Detections, FloatArray

ANCHOR_STRIDES: tuple[int, ...] = (8, 16, 32)
ANCHOR_SIZES: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
CENTRE_VARIANCE = 0.1
SIZE_VARIANCE = 0.2


@lru_cache(maxsize=32)
def anchors(tensor_width: int, tensor_height: int) -> FloatArray:
    """(N, 4) anchors as centre x, centre y, width, height in tensor pixels.

    Row-major over each stride's grid with the sizes innermost: the model's order.
    Cached per input size (~1 MB for a 1024x768 input, 3-4 ms to build; 32 sizes, as
    photos of one camera model still come in a few dozen padded sizes: widerface-dev's
    194 have 30); callers must not modify the returned array.
    """
    parts = []
    for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES, strict=True):
        cols = math.ceil(tensor_width / stride)
        rows = math.ceil(tensor_height / stride)
        xx, yy = np.meshgrid(np.arange(cols), np.arange(rows))
        centres = (np.stack([xx.ravel(), yy.ravel()], axis=1) + 0.5) * stride
        centres = np.repeat(centres, len(sizes), axis=0)
        dims = np.tile(
            np.repeat(np.asarray(sizes, dtype=np.float64)[:, None], 2, axis=1), (cols * rows, 1)
        )
        parts.append(np.concatenate([centres, dims], axis=1))
    out: FloatArray = np.concatenate(parts).astype(np.float64)
    out.setflags(write=False)
    return out


def decode_retinaface(
    outputs: Sequence[npt.NDArray[np.float32]],
    tensor_width: int,
    tensor_height: int,
    threshold: float,
) -> Detections:
    """Candidates above `threshold` in input-tensor pixels, before NMS.

    `outputs` are loc (1, N, 4), conf (1, N, 2: background, face, softmaxed) and
    landmarks (1, N, 10), N matching `anchors(tensor_width, tensor_height)`.
    """
    loc, conf, marks = outputs[:3]
    grid = anchors(tensor_width, tensor_height)
    if grid.shape[0] != loc.shape[1]:
        raise ValueError(f"{loc.shape[1]} predictions for {grid.shape[0]} anchors")
    keep = np.nonzero(conf[0, :, 1] > threshold)[0]
    if keep.size == 0:
        return Detections.empty()
    prior = grid[keep]
    deltas = loc[0, keep].astype(np.float64)
    centre = prior[:, :2] + deltas[:, :2] * CENTRE_VARIANCE * prior[:, 2:]
    size = prior[:, 2:] * np.exp(deltas[:, 2:] * SIZE_VARIANCE)
    boxes = np.concatenate([centre - size / 2.0, centre + size / 2.0], axis=1)
    points = marks[0, keep].astype(np.float64).reshape(-1, 5, 2)
    points = prior[:, None, :2] + points * CENTRE_VARIANCE * prior[:, None, 2:]
    return Detections(boxes, conf[0, keep, 1].astype(np.float64), points)
