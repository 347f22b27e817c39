"""Tracking quality on pan-and-zoom clips made from the WIDER FACE dev photos.

    .venv/bin/python -P bench/video_tracking.py [DEV_DIR] [--clips N] [--seconds S]
        [--intervals 40,200,1000] [--size 640x360] [--mode MODE] [--shake F] [--per-clip]

For N photos spread over the dev photos with 2-10 faces of >= 64 px (tests/support/
clips.py `clip_photos`; clips averaging under 0.5 eligible faces a frame are skipped
for the next photo), a clip (H.264, 25 fps) pans and zooms across each photo so
every frame's true boxes are known. Each clip is sampled at each interval (the
task's grid rule), the default detector runs on the sampled frames and
`core.tracking.Tracker` links them. Scored by `core.tracking_eval.score_tracking`:
recall of true faces >= 40 px fully in view (IoU >= 0.5), ID consistency (share of a
true face's matches carrying its most frequent track id, pooled; `worst` = the
lowest single face), purity (share of a track's matches on its most frequent true
face: one id stuck on two faces lowers it), ID switches (a true face's id changing
between its matches). `--shake 0.02` adds a hand-held camera's jitter to the pan
(tests/support/clips.py `pan_zoom_path`). Prints a Markdown table for the README
(totals per interval, then per clip with --per-clip).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))  # tests.support.clips

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from tests.support.clips import clip_photos, make_clip, track_clip  # noqa: E402

from facelens.adapters.detection.factory import build_detector  # noqa: E402
from facelens.adapters.widerface import load_widerface  # noqa: E402
from facelens.core.domain import DecodedImage, DetectOptions, Face  # noqa: E402
from facelens.core.tracking_eval import TrackingScore  # noqa: E402

MIN_ELIGIBLE = 0.5
"""Clips kept have on average at least this many eligible faces per frame."""
DEV_DIR = _ROOT / ".." / "shared" / "eval" / "widerface-dev"


def total(scores: list[TrackingScore]) -> TrackingScore:
    return TrackingScore(
        frames=sum(s.frames for s in scores),
        eligible=sum(s.eligible for s in scores),
        found=sum(s.found for s in scores),
        matches=sum(s.matches for s in scores),
        consistent=sum(s.consistent for s in scores),
        id_switches=sum(s.id_switches for s in scores),
        worst=min((s.worst for s in scores), default=1.0),
        faces=sum(s.faces for s in scores),
        pure=sum(s.pure for s in scores),
    )


def row(label: str, interval: int, s: TrackingScore) -> str:
    return (
        f"| {label} | {interval} | {s.frames} | {s.faces} | {s.eligible} | {s.recall:.3f} "
        f"| {s.id_consistency:.3f} | {s.worst:.2f} | {s.purity:.3f} | {s.id_switches} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dev_dir", nargs="?", type=Path, default=DEV_DIR)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--intervals", default="40,200,1000")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--mode", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shake", type=float, default=0.0)
    parser.add_argument("--per-clip", action="store_true")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    intervals = [int(v) for v in args.intervals.split(",")]

    dataset = load_widerface(args.dev_dir.resolve())
    pairs = zip(dataset.images, dataset.ground_truth, strict=True)
    truth = {im.key: (im.path, gt.boxes) for im, gt in pairs}
    candidates = clip_photos([(k, boxes) for k, (_, boxes) in truth.items()])
    step = max(1, len(candidates) // args.clips)
    candidates = candidates[::step] + [k for k in candidates if k not in candidates[::step]]
    detector = build_detector(threads=args.threads, mode=args.mode)
    options = DetectOptions()

    def detect(pixels: npt.NDArray[np.uint8]) -> list[Face]:
        image = DecodedImage(pixels, pixels.shape[1], pixels.shape[0], "rgb")
        return detector.detect(image, options)

    per_interval: dict[int, list[TrackingScore]] = {i: [] for i in intervals}
    lines: list[str] = []
    started = time.perf_counter()
    keys: list[str] = []
    with tempfile.TemporaryDirectory(prefix="facelens-tracking-") as tmp:
        for key in candidates:
            if len(keys) == args.clips:
                break
            photo, boxes = truth[key]
            clip = make_clip(
                photo,
                boxes,
                Path(tmp) / "clip.mp4",
                size=(width, height),
                seconds=args.seconds,
                shake=args.shake,
            )
            if sum(int(f.in_view(40).sum()) for f in clip.frames) < MIN_ELIGIBLE * len(clip.frames):
                continue  # a portrait photo: the 16:9 window misses its faces
            keys.append(key)
            n = len(keys) - 1
            for interval in intervals:
                score = track_clip(clip, detect, interval)
                per_interval[interval].append(score)
                lines.append(row(key, interval, score))
            print(f"# {n + 1}/{args.clips} {key}", file=sys.stderr, flush=True)
    header = (
        "| clips | interval ms | frames | faces | eligible | recall | ID consistency "
        "| worst face | purity | ID switches |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    print(
        f"{len(keys)} clips, {args.seconds:g} s each at 25 fps, {width}x{height}, "
        f"shake {args.shake:g}, "
        f"detector {detector.name}; {time.perf_counter() - started:.0f} s"
    )
    print(header)
    for interval in intervals:
        print(row(f"all {len(keys)}", interval, total(per_interval[interval])))
    if args.per_clip:
        print("\n" + header)
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
