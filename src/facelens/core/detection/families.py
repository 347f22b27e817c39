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

    `small_face_px` > 0 calibrates weak scores by size: a face of s < `small_face_px`
    model-input pixels (longer side) scoring under the family's default threshold
    has its score multiplied by `small_face_floor + (1 - small_face_floor) * s /
    small_face_px`. Small weak candidates are the least precise ones (most false
    positives at a low threshold are tiny), so ranking them lower raises AP, while
    the faces reported at the default threshold, and their scores, stay the same.

    `reduced_photos_only`: the pass runs only when the planned scale is below 1 (a
    photo larger than `plan.MAX_SIDE`, or a large `min_face_size`), where faces are
    large in pixels and a reduced pass finds them as the full-size pass does on an
    ordinary photo.

    `long_side` > 0 makes a coarse pass: it runs with the image's long side reduced to
    that many pixels (ignoring `factor`), and only when that is a reduction of the
    planned scale. A face filling the frame is larger than anything the models saw in
    training at 1:1 (they miss it, or box an eye or a cheek); at ~320 px it becomes an
    ordinary large face, for about a tenth of a 1024 px pass.
    """

    factor: float
    min_input_px: float = 0.0
    flip: bool = False
    small_face_px: float = 0.0
    small_face_floor: float = 1.0
    reduced_photos_only: bool = False
    long_side: int = 0


def coarse_pass(long_side: int) -> ScalePass:
    """The whole frame at `long_side` px, keeping faces of 30 % of it and more: the faces
    filling the frame that a 1:1 pass misses or boxes in parts (see `ScalePass`).

    Measured on four frame-filling dev faces (tests/model/test_failure_cases.py): all
    found alone with CenterFace at 224 px (5.5 ms) and RetinaFace at 192 px (3 ms)."""
    return ScalePass(1.0, min_input_px=0.3 * long_side, long_side=long_side)


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
    """Score threshold for callers that do not choose one (measurements:
    docs/detection-notes.md)."""
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
    # 0.4 rather than 0.3: on widerface-dev AP +0.2 to +0.4 points in every mode
    # (neighbouring small faces in crowds are less often suppressed).
    nms_iou=0.4,
    reliable_face_px=16.0,
    output_count=4,
    # The default mode's pass (adapters.detection.modes, "balanced"): up-scaled by 1.125 for the
    # small faces (1024 -> 1152 = 36 x 32, no padding); weak scores of faces under 64
    # input pixels calibrated down to 0.45x at size 0, which replaces the half-size pass
    # the large faces needed for the same easy AP, at a fifth of its cost. On photos
    # planned below 1:1 (over 2048 px) the half-size pass still runs: there the faces
    # are large, and a 4000x3000 copy of a photo then gives the 1024 px photo's faces.
    passes=(
        ScalePass(1.125, small_face_px=64.0, small_face_floor=0.45),
        ScalePass(0.5, min_input_px=24.0, reduced_photos_only=True),
        coarse_pass(192),
    ),
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
