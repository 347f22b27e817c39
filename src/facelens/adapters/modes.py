"""Speed/accuracy modes: named presets of models, scale passes and fusion.

Pure data (no inference import); `facelens.adapters.detectors` builds them.

Measured on widerface-dev (194 photos, 1024 px wide; AP easy/medium/hard; median ms
per image with the decode; OpenVINO bf16 backend, 2 threads; 2-core Zen 4 shared with
other jobs, so times vary +-30 % with the load):

| preset | AP e/m/h | ms |
|---|---|---|
| fast: RetinaFace 1x | .893/.860/.712 | 23.6 (32 images/s) |
| balanced: CenterFace 1x + 0.5x | .926/.906/.755 | 70.1 (11.5 images/s) |
| accurate: CenterFace 1x, 1.5x, 1.5x mirrored, 0.5x | .927/.915/.870 | 357 (2.0 images/s) |

(`facelens eval widerface-dev --mode M`, load average 1-2.3.)

Also tried (same set and harness, an ad-hoc `ModeSpec` through `run_dataset`):

* RetinaFace 0.75x: .889/.838/.579 (31 ms, ONNX Runtime): small faces lost.
* RetinaFace 1.5x .890/.862/.801; 1.25x + 0.5x .909/.871/.778; 1x + 1.5x .897/.872/.803.
* CenterFace 1.1x + 0.5x .923/.909/.777 (87 ms: the closest to the balanced goal of
  .92/.91/.78 at 80 ms, kept out of the default so its output stays as before);
  1.15x + 0.5x .923/.909/.797; 1.25x + 0.5x .925/.909/.823 (1.3-1.5x the time).
* CenterFace 1x + 1.5x + 0.5x .926/.911/.854; adding RetinaFace 1x by fusion lowers all
  three (.922/.904/.837); 1x + 2x + 0.5x .914/.904/.878 (slower); mirroring the 1x pass
  .928/.917/.853; mirroring every pass .933/.922/.866 (about twice the time).
* ONNX Runtime fp32 instead of OpenVINO bf16: same AP within .002, ~1.4x the time
  (RetinaFace 32 ms, CenterFace 1x + 0.5x 117 ms at low load).
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
    summary="RetinaFace-MobileNet0.25, one pass at the planned scale",
)
BALANCED = ModeSpec(
    name="balanced",
    runs=(ModelRun("centerface", (ScalePass(1.0), ScalePass(0.5, min_input_px=24.0))),),
    summary="CenterFace at 1x, plus 0.5x for the large faces",
)
ACCURATE = ModeSpec(
    name="accurate",
    runs=(
        ModelRun(
            "centerface",
            (
                ScalePass(1.0),
                ScalePass(1.5),
                ScalePass(1.5, flip=True),
                ScalePass(0.5, min_input_px=24.0),
            ),
        ),
    ),
    summary="CenterFace at 1x, 1.5x, 1.5x mirrored and 0.5x, fused",
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
