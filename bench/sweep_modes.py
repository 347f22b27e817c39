"""Mode sweep: cache every pass's raw candidates once, then try fusions offline.

    .venv/bin/python -P bench/sweep_modes.py collect [--passes centerface:1.15,...] [--limit N]
    .venv/bin/python -P bench/sweep_modes.py sweep

(`-P`: bench/queue.py would otherwise shadow the standard library's `queue`.)

`collect` decodes each widerface-dev image like `facelens eval` does and runs each
requested pass (`model:factor`, `f` suffix = mirrored, e.g. `centerface:0.5f`) through
the real detector code path up to, not including, the per-pass NMS: candidates above
the evaluation floor (0.05), centred in the image, clipped, un-mirrored and mapped to
original pixels. One .npz per pass under `--cache` (default /tmp/facelens-sweep),
with the median inference ms of the pass. For CenterFace each candidate also carries
whether it is a 3x3 heatmap peak.

`sweep` (or `python -c` with `evaluate(recipe)`) rebuilds a mode's output from the
cache: per-pass NMS and `min_input_px`, then fusion across passes (weighted box fusion,
plain NMS or box voting), a lone penalty, a score cut, and scores the result with the
project's protocol (`facelens.core.evaluation.evaluate_widerface`). A recipe takes
seconds, so fusion settings can be compared exhaustively; only the times need a real
`facelens eval` run.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from facelens.adapters.detection.factory import build_detector
from facelens.adapters.detection.mirror import unmirror
from facelens.adapters.images import PillowDecoder, resize_rgb
from facelens.adapters.widerface import WiderDataset, load_widerface
from facelens.core.detection.boxes import Detections, _clusters, fuse, nms
from facelens.core.detection.plan import detection_scale, pass_scale, plan_input
from facelens.core.evaluation import evaluate_widerface

DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "widerface-dev"
CACHE = Path("/tmp/facelens-sweep")
FLOOR = 0.05
MODEL_OF = {"centerface": "balanced", "retinaface-mnet025": "fast"}

DEFAULT_PASSES = [
    f"centerface:{f}"
    for f in ("1.0", "1.1", "1.125", "1.15", "1.2", "1.25", "1.5", "1.75", "0.5", "0.75")
] + ["centerface:1.0f", "centerface:0.5f", "centerface:1.5f", "retinaface-mnet025:1.0"]


def pass_name(spec: str) -> tuple[str, float, bool]:
    """`model:factor[f][n]`: f mirrored, n nearest-neighbour up-scaling."""
    model, factor = spec.split(":")
    flip = "f" in factor
    return model, float(factor.rstrip("fn")), flip


def _peaks(heat: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Cells that are the maximum of their 3x3 neighbourhood (CenterNet-style)."""
    padded = np.pad(heat, 1, constant_values=-1.0)
    best = heat.copy()
    h, w = heat.shape
    for dy in range(3):
        for dx in range(3):
            np.maximum(best, padded[dy : dy + h, dx : dx + w], out=best)
    out: npt.NDArray[np.bool_] = heat >= best
    return out


def collect(dataset: WiderDataset, spec: str, cache: Path, limit: int | None) -> Path:
    model, factor, flip = pass_name(spec)
    detector = build_detector(mode=MODEL_OF[model])
    member = detector.members[0]
    family, session = member.family, member.session
    decoder = PillowDecoder()
    rows: list[npt.NDArray[np.float64]] = []
    offsets = [0]
    infer_ms: list[float] = []
    for item in dataset.images[:limit]:
        image = decoder.decode(item.path.read_bytes())
        base = detection_scale(image.width, image.height, None, family.reliable_face_px)
        scale = pass_scale(image.width, image.height, base, factor)
        plan = plan_input(image.width, image.height, scale, family.multiple)
        if spec.endswith("n") and plan.factor > 1.0:
            resized = Image.fromarray(image.pixels).resize(
                (plan.width, plan.height), Image.Resampling.NEAREST
            )
            pixels = np.asarray(resized)
        elif plan.resizes:
            pixels = resize_rgb(image.pixels, plan.width, plan.height)
        else:
            pixels = image.pixels
        if flip:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
        started = time.perf_counter()
        outputs = session.infer(pixels, plan)  # the backend's input preparation included
        infer_ms.append((time.perf_counter() - started) * 1000)
        dets = family.decode(outputs, plan.tensor_width, plan.tensor_height, FLOOR)
        if family.name == "centerface" and len(dets):
            heat = outputs[0][0, 0]
            ys, xs = np.nonzero(heat > FLOOR)
            peak = _peaks(heat)[ys, xs].astype(np.float64)
        else:
            peak = np.ones(len(dets))
        cx = (dets.boxes[:, 0] + dets.boxes[:, 2]) / 2.0
        cy = (dets.boxes[:, 1] + dets.boxes[:, 3]) / 2.0
        inside = (cx >= 0) & (cx < plan.width) & (cy >= 0) & (cy < plan.height)
        dets, peak = dets.take(inside).clipped(plan.width, plan.height), peak[inside]
        if flip and len(dets):
            dets = unmirror(dets, plan.width)
        # input size (longer side, model pixels) is kept for min_input_px
        size = np.maximum(dets.widths, dets.heights)
        dets = dets.scaled(plan.factor * image.scale).clipped(image.width, image.height)
        rows.append(np.column_stack([dets.boxes, dets.scores, size, peak]))
        offsets.append(offsets[-1] + len(dets))
        print(f"\r{spec} {len(offsets) - 1}/{len(dataset.images[:limit])}", end="", file=sys.stderr)
    print(file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{spec.replace(':', '_')}.npz"
    np.savez(
        path,
        rows=np.concatenate(rows) if rows else np.zeros((0, 7)),
        offsets=np.asarray(offsets),
        keys=np.asarray([i.key for i in dataset.images[:limit]]),
        infer_ms=np.asarray(infer_ms),
    )
    return path


@dataclass(frozen=True)
class Pass:
    spec: str
    min_input_px: float = 0.0
    max_input_px: float = 1e9
    weight: float = 1.0
    """Scores of this pass are multiplied by it (calibration across passes)."""


@dataclass(frozen=True)
class Recipe:
    passes: tuple[Pass, ...]
    fusion: str = "wbf"  # wbf | nms | vote
    fusion_iou: float = 0.4
    lone_penalty: float = 1.0
    cut: float = FLOOR
    nms_iou: float | None = None
    """Per-pass NMS IoU (None: the family's 0.3 / 0.4); 0 skips per-pass NMS."""
    peaks_only: bool = False
    score: str = "max"  # max | mean (fused score over the cluster's passes)
    extra: dict[str, float] = field(default_factory=dict)


class Cache:
    def __init__(self, root: Path = CACHE) -> None:
        self.root = root
        self._raw: dict[str, list[npt.NDArray[np.float64]]] = {}
        self._nms: dict[tuple[str, float, bool, float, float], list[npt.NDArray[np.float64]]] = {}
        self.keys: list[str] = []
        self.infer_ms: dict[str, float] = {}

    def raw(self, spec: str) -> list[npt.NDArray[np.float64]]:
        if spec not in self._raw:
            data = np.load(self.root / f"{spec.replace(':', '_')}.npz")
            rows, offsets = data["rows"], data["offsets"]
            self._raw[spec] = [rows[a:b] for a, b in itertools.pairwise(offsets)]
            self.keys = [str(k) for k in data["keys"]]
            self.infer_ms[spec] = float(np.median(data["infer_ms"]))
        return self._raw[spec]

    def after_nms(
        self, spec: str, iou: float, peaks_only: bool, min_px: float = 0.0, max_px: float = 1e9
    ) -> list[npt.NDArray[np.float64]]:
        """One pass's candidates as the detector keeps them: size filter, then NMS."""
        key = (spec, iou, peaks_only, min_px, max_px)
        if key not in self._nms:
            out = []
            for rows in self.raw(spec):
                if peaks_only:
                    rows = rows[rows[:, 6] > 0]
                rows = rows[(rows[:, 5] >= min_px) & (rows[:, 5] < max_px)]
                if iou > 0 and len(rows):
                    rows = rows[nms(rows[:, :4], rows[:, 4], iou)]
                out.append(rows)
            self._nms[key] = out
        return self._nms[key]


def _vote(rows: npt.NDArray[np.float64], iou: float) -> npt.NDArray[np.float64]:
    """NMS keeping the leader's score, with the box replaced by the members' weighted mean
    (same as WBF; differs only in how the cluster is formed, here at a fixed IoU)."""
    dets = Detections(rows[:, :4], rows[:, 4], np.zeros((len(rows), 5, 2)))
    fused = fuse(dets, iou)
    return np.column_stack([fused.boxes, fused.scores])


def _fuse_variants(rows: npt.NDArray[np.float64], recipe: Recipe) -> npt.NDArray[np.float64]:
    """Fusion variants: lone penalty only above a face size, other cluster scores."""
    clusters = _clusters(rows[:, :4], rows[:, 4], recipe.fusion_iou)
    lone_min = recipe.extra.get("lone_min", 0.0)
    npass = len(recipe.passes)
    out = np.zeros((len(clusters), 5))
    for n, members in enumerate(clusters):
        m = rows[members]
        w = m[:, 4]
        if recipe.fusion == "vote":
            out[n, :4] = m[0, :4]
        else:
            out[n, :4] = (m[:, :4] * w[:, None]).sum(0) / w.sum()
        passes = np.unique(m[:, 5])
        best = np.array([m[m[:, 5] == p, 4].max() for p in passes])
        if recipe.score == "mean":
            score = best.sum() / npass
            score = max(score, m[0, 4] * recipe.extra.get("mean_floor", 0.0))
        elif recipe.score == "noisyor":
            score = 1.0 - np.prod(1.0 - best)
        elif recipe.score == "noisyor_all":
            score = 1.0 - np.prod(1.0 - w)
        elif recipe.score == "avg_seen":
            score = best.mean()
        else:
            score = m[0, 4]
        size = max(out[n, 2] - out[n, 0], out[n, 3] - out[n, 1])
        if len(passes) == 1 and size >= lone_min:
            score *= recipe.lone_penalty
        out[n, 4] = score
    return out


def predictions(cache: Cache, recipe: Recipe) -> dict[str, npt.NDArray[np.float64]]:
    per_pass = []
    for p in recipe.passes:
        model = pass_name(p.spec)[0]
        iou = (
            recipe.nms_iou
            if recipe.nms_iou is not None
            else (0.3 if model == "centerface" else 0.4)
        )
        per_pass.append(
            cache.after_nms(p.spec, iou, recipe.peaks_only, p.min_input_px, p.max_input_px)
        )
    out: dict[str, npt.NDArray[np.float64]] = {}
    for n, key in enumerate(cache.keys):
        parts = []
        for p, rows_all in zip(recipe.passes, per_pass, strict=True):
            rows = rows_all[n]
            if "cal_px" in recipe.extra:  # size calibration: small faces' scores lowered
                ramp = np.clip(rows[:, 5] / recipe.extra["cal_px"], 0.0, 1.0)
                low = recipe.extra.get("cal_low", 0.8)
                rows = rows.copy()
                factor = low + (1.0 - low) * ramp ** recipe.extra.get("cal_pow", 0.0)
                below = rows[:, 4] < recipe.extra.get("cal_below", 2.0)
                rows[:, 4] = np.where(below, rows[:, 4] * factor, rows[:, 4])
            if p.weight != 1.0:
                rows = rows.copy()
                rows[:, 4] *= p.weight
            parts.append(np.column_stack([rows[:, :5], np.full(len(rows), len(parts))]))
        rows = np.concatenate(parts) if parts else np.zeros((0, 6))
        if len(recipe.passes) > 1 and len(rows):
            dets = Detections(rows[:, :4], rows[:, 4], np.zeros((len(rows), 5, 2)))
            if recipe.fusion == "nms":
                rows = rows[nms(dets.boxes, dets.scores, recipe.fusion_iou)]
                rows = rows[:, :5]
            elif recipe.fusion == "wbf" and not recipe.extra and recipe.score == "max":
                fused = fuse(dets, recipe.fusion_iou, recipe.lone_penalty)
                rows = np.column_stack([fused.boxes, fused.scores])
            else:
                rows = _fuse_variants(rows, recipe)
        rows = rows[rows[:, 4] >= recipe.cut]
        xywh = rows[:, :5].copy()
        xywh[:, 2] -= xywh[:, 0]
        xywh[:, 3] -= xywh[:, 1]
        out[key] = xywh
    return out


_TRUTH: dict[str, object] = {}


def evaluate(cache: Cache, recipe: Recipe, dataset: WiderDataset) -> tuple[float, float, float]:
    preds = predictions(cache, recipe)
    truth = [g for g in dataset.ground_truth if g.key in preds]
    ap = evaluate_widerface(preds, truth)
    return ap["easy"], ap["medium"], ap["hard"]


def cost(cache: Cache, recipe: Recipe) -> float:
    """Relative pixels of the passes (1x = 1)."""
    return sum(pass_name(p.spec)[1] ** 2 for p in recipe.passes)


def report(cache: Cache, dataset: WiderDataset, recipes: Iterable[tuple[str, Recipe]]) -> None:
    for label, recipe in recipes:
        e, m, h = evaluate(cache, recipe, dataset)
        ms = sum(cache.infer_ms.get(p.spec, 0.0) for p in recipe.passes)
        print(
            f"{e:.3f}/{m:.3f}/{h:.3f}  cost {cost(cache, recipe):5.2f}  infer {ms:6.1f} ms  {label}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("collect", "sweep"))
    parser.add_argument("--passes", default=",".join(DEFAULT_PASSES))
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    dataset = load_widerface(args.dataset)
    if args.command == "collect":
        for spec in args.passes.split(","):
            path = args.cache / f"{spec.replace(':', '_')}.npz"
            if not path.exists():
                collect(dataset, spec, args.cache, args.limit)
        return
    cache = Cache(args.cache)
    big = Pass("centerface:0.5", min_input_px=24.0)
    mid = Pass("centerface:0.75", min_input_px=24.0)
    noisy = {"x": 1.0}  # any extra key routes through `_fuse_variants`
    report(
        cache,
        dataset,
        [
            ("old balanced: cf 1 + 0.5, max", Recipe((Pass("centerface:1.0"), big))),
            (
                "fast: rf 1, nms .5, weak small faces x0.8-1 under 24 px",
                Recipe(
                    (Pass("retinaface-mnet025:1.0"),),
                    nms_iou=0.5,
                    extra={"cal_px": 24.0, "cal_low": 0.8, "cal_pow": 1.0, "cal_below": 0.8},
                ),
            ),
            (
                "balanced: cf 1.125, nms .4, weak small faces x0.45-1 under 64 px",
                Recipe(
                    (Pass("centerface:1.125"),),
                    nms_iou=0.4,
                    extra={"cal_px": 64.0, "cal_low": 0.45, "cal_pow": 1.0, "cal_below": 0.5},
                ),
            ),
            (
                "balanced alternative: cf 1.125 + 0.5, noisy-or",
                Recipe((Pass("centerface:1.125"), big), score="noisyor", extra=noisy),
            ),
            (
                "accurate: cf 1.75 + 0.75 + 0.5, nms .4, noisy-or",
                Recipe(
                    (Pass("centerface:1.75"), mid, big), nms_iou=0.4, score="noisyor", extra=noisy
                ),
            ),
        ],
    )


if __name__ == "__main__":
    main()
