"""Speed/accuracy modes: named presets of models, scale passes and fusion.

Pure data; `sessions.SessionCache` builds a detector from a preset. Each preset is the
cheapest combination found that meets its goal on widerface-dev (AP easy / medium /
hard, median time per image): fast >= .89/.86/.70 in 25 ms, balanced >= .92/.91/.78 in
80 ms, accurate >= .93/.92/.87 in 400 ms. The measurements, and the variants tried and
dropped (found with `bench/sweep_modes.py`), are in docs/detection-notes.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from facelens.core.detection.boxes import FusionScore
from facelens.core.detection.families import CENTERFACE, ScalePass

FUSION_IOU = 0.4
"""Cluster IoU when candidates of several passes or models are fused: better than 0.55
on widerface-dev, and 0.3 or 0.5 change AP by less than 0.002."""


@dataclass(frozen=True, slots=True)
class ModelRun:
    """One registered model inside a mode, with its passes (None: the family's) and
    the IoU of each pass's NMS (None: the family's `nms_iou`)."""

    model: str
    passes: tuple[ScalePass, ...] | None = None
    nms_iou: float | None = None


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """A mode: the model runs whose candidates are fused, and how.

    `score_threshold` None means the first run's family default. `flip` also runs
    every model on the mirrored image (test-time augmentation). Runs and flipped runs
    are merged by weighted box fusion at `fusion_iou`; a face seen by only one of
    them has its score multiplied by `lone_penalty`. `fusion_score` is how a fused
    face is scored (`facelens.core.detection.boxes.fuse`): its best candidate or the
    candidates' noisy-or.
    """

    name: str
    runs: tuple[ModelRun, ...]
    summary: str
    score_threshold: float | None = None
    flip: bool = False
    fusion_iou: float = FUSION_IOU
    lone_penalty: float = 1.0
    fusion_score: FusionScore = "max"


# fast: the smaller model at the planned size only (no up-scaling fits in 25 ms). NMS
# 0.5 rather than the family's 0.4 keeps neighbouring faces apart (AP +0.1 to +0.5);
# weak scores of faces under 24 px are calibrated down, which ranks tiny false
# positives below real faces without changing what the default threshold reports.
FAST = ModeSpec(
    name="fast",
    runs=(
        ModelRun(
            "retinaface-mnet025",
            (ScalePass(1.0, small_face_px=24.0, small_face_floor=0.8),),
            nms_iou=0.5,
        ),
    ),
    summary="RetinaFace-MobileNet0.25, one pass at the planned scale, small faces calibrated",
)
# balanced: CenterFace's own passes (see `families.CENTERFACE`): hard AP is bought with
# up-scaling, and calibrating small faces' weak scores replaces the half-size pass the
# large faces needed, at a fifth of its cost; the coarse pass catches faces filling
# the frame.
BALANCED = ModeSpec(
    name="balanced",
    runs=(ModelRun("centerface", CENTERFACE.passes),),
    summary="CenterFace at 1.125x plus a coarse 192 px pass for faces filling the frame, "
    "small faces' scores calibrated by size",
)
# accurate: 1.75x for the small faces (hard AP), 0.75x and 0.5x for the large ones the
# up-scaling loses, fused by noisy-or (easy +1, medium +0.5 over the best score). No
# mirrored runs: twice the time for +0.6 easy and -0.7 hard.
ACCURATE = ModeSpec(
    name="accurate",
    runs=(
        ModelRun(
            "centerface",
            (
                ScalePass(1.75),
                ScalePass(0.75, min_input_px=24.0),
                ScalePass(0.5, min_input_px=24.0),
            ),
        ),
    ),
    summary="CenterFace at 1.75x, plus 0.75x and 0.5x for the larger faces, noisy-or fused",
    fusion_score="noisy_or",
)

MODE_SPECS: dict[str, ModeSpec] = {m.name: m for m in (FAST, BALANCED, ACCURATE)}
MODES: tuple[str, ...] = tuple(MODE_SPECS)
"""Mode names, fastest first (the same as `mode_names.MODE_NAMES`, which settings read
without loading this module)."""
DEFAULT_MODE = "balanced"


def mode_spec(name: str) -> ModeSpec:
    """The preset called `name`; ValueError naming the known modes otherwise."""
    spec = MODE_SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown detection mode {name!r}; known: {', '.join(MODES)}")
    return spec
