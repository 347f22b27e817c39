"""Mirrored inference: the image flipped left-right, and its detections flipped back.

A mode may run its models on the mirrored image too (`ModeSpec.flip`), and a scale
pass may run mirrored (`ScalePass.flip`); either way the detections must come back in
the unmirrored frame with the viewer's left and right landmarks swapped back.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from facelens.core.detection.boxes import Detections
from facelens.core.domain import DecodedImage

MIRROR_LANDMARKS = np.array([1, 0, 2, 4, 3], dtype=np.intp)
"""Landmark order after a horizontal flip: the eyes and the mouth corners swap."""


def mirrored(image: DecodedImage) -> DecodedImage:
    """The image flipped left-right (same size and scale)."""
    return replace(image, pixels=np.ascontiguousarray(image.pixels[:, ::-1]))


def unmirror(dets: Detections, width: float) -> Detections:
    """Detections found on the mirrored image, in the unmirrored image's frame."""
    boxes = dets.boxes.copy()
    boxes[:, 0] = width - dets.boxes[:, 2]
    boxes[:, 2] = width - dets.boxes[:, 0]
    marks = dets.landmarks[:, MIRROR_LANDMARKS].copy()
    marks[:, :, 0] = width - marks[:, :, 0]
    return Detections(boxes, dets.scores, marks)
