"""Speed/accuracy modes: named presets of models, scale passes and fusion.

Pure data (no ONNX Runtime import); `facelens.adapters.detectors` builds them. The
figures quoted are from `facelens eval --mode M` on widerface-dev (194 photos, 1024 px
wide, decode included, 2-core Zen 4 shared with other work); see the module
`facelens.adapters.detectors` for the table and what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass

from facelens.core.detection.families import ScalePass


@dataclass(frozen=True, slots=True)
class ModelRun:
    """One registered model inside a mode, with its passes (None: the family's)."""

    model: str
    passes: tuple[ScalePass, ...] | None = None


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """A mode: the model runs whose candidates are fused, and how.

    `score_threshold` None means the first run's family default. `flip` also runs
    every model on the mirrored image (test-time augmentation). Runs and flipped runs
    are merged by weighted box fusion at `fusion_iou`; a face seen by only one of
    them has its score multiplied by `lone_penalty`.
    """

    name: str
    runs: tuple[ModelRun, ...]
    summary: str
    score_threshold: float | None = None
    flip: bool = False
    fusion_iou: float = 0.4
    lone_penalty: float = 1.0


FAST = ModeSpec(
    name="fast",
    runs=(ModelRun("retinaface-mnet025", (ScalePass(1.0),)),),
    summary="RetinaFace-MobileNet0.25, one pass",
)
BALANCED = ModeSpec(
    name="balanced",
    runs=(ModelRun("centerface", (ScalePass(1.0), ScalePass(0.5, min_input_px=24.0))),),
    summary="CenterFace at 1x and 0.5x (large faces)",
)
ACCURATE = ModeSpec(
    name="accurate",
    runs=(
        ModelRun(
            "centerface",
            (ScalePass(1.0), ScalePass(1.5), ScalePass(0.5, min_input_px=24.0)),
        ),
    ),
    summary="CenterFace at 1x, 1.5x and 0.5x",
)

MODE_SPECS: dict[str, ModeSpec] = {m.name: m for m in (FAST, BALANCED, ACCURATE)}
MODES: tuple[str, ...] = tuple(MODE_SPECS)
"""Mode names, fastest first."""
DEFAULT_MODE = "balanced"


def mode_spec(name: str) -> ModeSpec:
    """The preset called `name`; ValueError naming the known modes otherwise."""
    spec = MODE_SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown detection mode {name!r}; known: {', '.join(MODES)}")
    return spec
