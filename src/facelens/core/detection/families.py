"""Model families: what a kind of face model needs before and after inference.

A family ties preprocessing (channel order, normalisation, stride multiple), the
output decoder and the tuned post-processing constants together, so a model registry
entry (or an ONNX file given by path) only has to name its family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facelens.core.detection.boxes import Detections
from facelens.core.detection.centerface import decode_centerface
from facelens.core.detection.retinaface import decode_retinaface

Outputs = Sequence[npt.NDArray[np.float32]]
Decoder = Callable[[Outputs, int, int, float], Detections]
"""(model outputs, tensor width, tensor height, candidate threshold) -> candidates."""


@dataclass(frozen=True, slots=True)
class ScalePass:
    """One inference of a multi-pass detection.

    `factor` multiplies the planned scale (see `plan.detection_scale`); `min_input_px`
    drops this pass's faces smaller than that many model-input pixels, so a reduced
    pass only contributes the large faces it localises better and none of the small
    false positives a reduced image produces. `flip` runs the pass on the mirrored
    image (test-time augmentation; its faces are mirrored back before fusion).
    """

    factor: float
    min_input_px: float = 0.0
    flip: bool = False


@dataclass(frozen=True, slots=True)
class ModelFamily:
    name: str
    decode: Decoder
    mean: tuple[float, float, float]
    """Subtracted per tensor channel (after reordering to `bgr` if set)."""
    std: tuple[float, float, float]
    bgr: bool
    multiple: int
    """Input sides are padded up to a multiple of this (the total stride)."""
    default_threshold: float
    """Score threshold for callers that do not choose one (measurements: the
    `facelens.adapters.detectors` module docstring)."""
    nms_iou: float
    reliable_face_px: float
    """Smallest face side, in model-input pixels, found with high recall."""
    output_count: int
    """How many outputs the ONNX graph has: used to recognise a family by its outputs."""
    passes: tuple[ScalePass, ...] = (ScalePass(1.0),)
    """The default passes; several are merged by weighted box fusion."""


def _centerface(outputs: Outputs, width: int, height: int, threshold: float) -> Detections:
    return decode_centerface(outputs, height, threshold)


CENTERFACE = ModelFamily(
    name="centerface",
    decode=_centerface,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    bgr=False,
    multiple=32,
    default_threshold=0.5,
    nms_iou=0.3,
    reliable_face_px=16.0,
    output_count=4,
    # A half-size pass for faces >= 24 px there (48 px at 1:1): CenterFace localises big
    # faces better when they are smaller. On widerface-dev: AP easy +1.8, medium +0.8
    # points, hard unchanged, for about a third more time (see detectors.py).
    passes=(ScalePass(1.0), ScalePass(0.5, min_input_px=24.0)),
)

RETINAFACE = ModelFamily(
    name="retinaface",
    decode=decode_retinaface,
    mean=(104.0, 117.0, 123.0),
    std=(1.0, 1.0, 1.0),
    bgr=True,
    multiple=32,
    default_threshold=0.8,
    nms_iou=0.4,
    reliable_face_px=16.0,
    output_count=3,
)

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (CENTERFACE, RETINAFACE)}


def family_for_outputs(output_count: int) -> ModelFamily:
    """The family of an unknown ONNX model, recognised by its number of outputs."""
    for family in FAMILIES.values():
        if family.output_count == output_count:
            return family
    raise ValueError(
        f"a face model with {output_count} outputs is not a known family "
        f"(CenterFace has 4: heatmap, scale, offset, landmarks; RetinaFace 3: loc, conf, landmarks)"
    )
