"""Speed/accuracy modes: named presets of models, scale passes and fusion.

Pure data (no inference import); `facelens.adapters.detectors` builds them.

Measured on widerface-dev (194 photos, 1024 px wide; AP easy/medium/hard; median ms
per image with the decode; `facelens eval ../shared/eval/widerface-dev --mode M`,
OpenVINO bf16 backend, 2 threads; a 2-core Zen 4 shared with other jobs, so times vary
+-30 % with the load; goals: fast >= .89/.86/.70 in 25 ms, balanced >= .92/.91/.78 in
80 ms, accurate >= .93/.92/.87 in 400 ms):

| preset | AP e/m/h | ms (images/s) | load |
|---|---|---|---|
| fast: RetinaFace 1x, NMS .5, small calibrated | .898/.864/.715 | 21.0-30.1 (28-37) | 0.3-1.3 |
| balanced: CenterFace 1.125x + coarse, calibrated | .927/.915/.783 | 72-95 (9-11) | 1.1-1.7 |
| accurate: CenterFace 1.75x+.75x+.5x, noisy-or | .955/.938/.879 | 223-255 (3.5-3.9) | 1.6-1.9 |

(2026-11-24 00:23-00:34, several runs each, machine otherwise idle: the load is the
evaluation's own; the spread is the machine's.) The coarse pass (`families.coarse_pass`,
the whole frame at 192 px for faces of 30 % of it and more, skipped once three
confident faces are found) exists for faces filling the frame, which 1.125x misses or
boxes in parts; it raised balanced from .924/.914/.783 and costs ~5-8 ms on photos of
fewer than three faces (paired, same process). Faces boxed inside a larger,
better-scored face are dropped (`selection.without_face_parts`; AP within .001).
Before (same harness): fast
.893/.860/.712 23.6 ms; balanced CenterFace 1x + 0.5x .926/.906/.755 70 ms; accurate
CenterFace 1x, 1.5x, 1.5x mirrored, 0.5x .927/.915/.870 357 ms (load 1-2.3). Timed
image by image against those old presets in one process (warm, load 1-1.5): balanced
1.05x the old one's time (82.3 vs 81.1 ms), fast 0.98x (23.9 vs 25.0 ms), so on the
quiet machine that gave the old 70 ms the new balanced should take ~74 ms.

How they were found: `bench/sweep_modes.py` caches every pass's raw candidates once and
scores fusion variants offline with the project's protocol. What it showed:

* Hard AP is bought with up-scaling (CenterFace 1x .755, 1.1x .777, 1.125x .786, 1.15x
  .796, 1.2x .812, 1.25x .823, 1.75x alone ~.87); easy AP is lost with it (large faces),
  which the old 0.5x pass won back (+2 points) at 0.25x the pixels plus its resize.
* Calibrating by size does the 0.5x pass's job for free: most false positives at a low
  threshold are tiny, so weak (below the default threshold) scores of faces under N
  input pixels are scaled by floor + (1 - floor) * size / N (`ScalePass.small_face_px`).
  CenterFace 1.125x alone .912/.902/.786 -> .924/.914/.783 (N 64, floor 0.45); the
  faces reported at the default threshold do not change. Calibrating every score
  instead was as good for AP but lost small faces at the default threshold.
* Balanced on photos over 2048 px (planned below 1:1) adds the 0.5x pass back
  (`ScalePass.reduced_photos_only`): there faces are large, and without it a 4000x3000
  copy of a dev photo lost 2 of the 15 faces the 1024 px photo gives
  (tests/model/test_failure_cases.py). No effect on widerface-dev (all 1024 px).
* Per-pass NMS 0.4 instead of 0.3 (CenterFace): +0.2 to +0.4 points everywhere;
  RetinaFace 0.5 instead of 0.4: +0.3 easy, +0.1 medium, +0.5 hard.
* Fusing passes by noisy-or (`fuse(score="noisy_or")`) instead of the best score: +1
  easy, +0.5 medium, hard unchanged (CenterFace 1.125x + 0.5x .936/.911/.783; 1.15x +
  0.5x .934/.913/.795). A 0.75x pass for faces >= 32 px adds ~2 points medium.
* Not better: lone penalty (easy +0.7 but hard -0.3 at 0.8); plain NMS across passes
  (-1 easy); box voting (-1 easy); RetinaFace 0.5x as the large-face pass under
  CenterFace (-1 point everywhere); 3x3 heatmap peaks instead of NMS (hard -1.5: it
  merges neighbouring tiny faces); nearest-neighbour up-scaling (1.125x: medium -0.4;
  2x: hard -2.4); mirroring (every pass: +0.6 easy for 2x the time; 1.75x + 0.75x
  mirrored: +0.6 easy, hard -0.7); fusion IoU 0.3/0.5 vs 0.4 (within 0.002).
* Time, per balanced image (warm, load ~1): inference 61 ms, Pillow's bilinear
  up-scaling 10.5 ms (now two strips in parallel, ~half), decode 3.8, NMS + fusion
  3. OpenVINO takes uint8 pixels with the normalisation compiled in (no float tensor,
  no NCHW reorder: identical outputs). Its first run of each new input size costs
  ~20 ms, ~50-80 ms when larger than every size before: a start-up warm-up at
  1536x1536 avoids the latter. Not worth it: an exact greedy NMS over precomputed
  overlapping pairs (median image 1 ms already; crowds slower); OpenVINO's own
  Interpolate for the up-scaling (2x slower than Pillow); ONNX Runtime's uint8 Resize
  (about as fast as the two strips); padding input sizes to multiples of 64/128 to
  compile fewer sizes (30 -> 20/11 sizes for +2-6 % pixels).
* ONNX Runtime fp32 instead of OpenVINO bf16: same AP within .002, ~1.4x the time.
"""

from __future__ import annotations

from dataclasses import dataclass

from facelens.core.detection.boxes import FusionScore
from facelens.core.detection.families import CENTERFACE, ScalePass


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
    fusion_iou: float = 0.4
    lone_penalty: float = 1.0
    fusion_score: FusionScore = "max"


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
BALANCED = ModeSpec(
    name="balanced",
    runs=(ModelRun("centerface", CENTERFACE.passes),),
    summary="CenterFace at 1.125x plus a coarse 192 px pass for faces filling the frame, "
    "small faces' scores calibrated by size",
)
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
"""Mode names, fastest first."""
DEFAULT_MODE = "balanced"


def mode_spec(name: str) -> ModeSpec:
    """The preset called `name`; ValueError naming the known modes otherwise."""
    spec = MODE_SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown detection mode {name!r}; known: {', '.join(MODES)}")
    return spec
