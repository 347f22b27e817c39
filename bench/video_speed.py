"""Cost of an analysed video frame beside the same frame given as a still JPEG.

    .venv/bin/python -P bench/video_speed.py [DEV_DIR] [--seconds 20] [--interval-ms 1000]
        [--size 1920x1080] [--fps 25] [--mode MODE] [--repeat 2]

The issue's goal: at `frame_interval_ms` 1000 on a 1080p H.264 clip, the cost per
analysed frame is at most 1.15x that of the same frame as a still JPEG in the same
mode. What is timed, in one process, after a warm-up:

* video: what a video task does per segment: the real decoder child
  (`adapters.video.VideoDecoder`: start, probe, index, seek/decode, RGB, pipe) and
  per analysed frame detection, tracking and the sharpness the tracks need. Wall
  time / analysed frames = cost per frame; wall time minus detection = decode wait
  per frame; the child's CPU time (RUSAGE_CHILDREN) / frames = decode CPU per frame
  (the child decodes the next frame while the parent detects, so wait < CPU). CPU
  per frame = this process's CPU (all threads) plus the child's.
* still: the frames the video run analysed, each encoded beforehand as a JPEG
  (quality 90, what a camera or a frame grab gives); timed: `PillowDecoder.decode`
  and detection, as an image task does.

Each side runs `--repeat` times, alternating, and the best run of each is reported
(the machine is shared; the best is the least disturbed). Both ratios are printed:
wall time (what a user waits) and CPU time (what it costs; much less disturbed by
other load on a shared machine). The clip is made by
tests/support/clips.py (a pan and zoom over a dev photo with five faces, libx264
yuv420p at its defaults: a keyframe every 250 frames, so most grid points need a
decode from the previous one rather than a seek). Prints `uptime` before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))  # tests.support.clips

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from PIL import Image  # noqa: E402
from tests.support.clips import make_clip  # noqa: E402

from facelens.adapters.detection.face_detector import FaceDetector  # noqa: E402
from facelens.adapters.detection.factory import build_detector  # noqa: E402
from facelens.adapters.images import PillowDecoder  # noqa: E402
from facelens.adapters.video import VideoDecoder  # noqa: E402
from facelens.adapters.widerface import load_widerface  # noqa: E402
from facelens.core.detection.quality import face_quality  # noqa: E402
from facelens.core.domain import DecodedImage, DetectOptions  # noqa: E402
from facelens.core.tracking import Tracker, face_box  # noqa: E402
from facelens.core.video import Sampling  # noqa: E402

DEV_DIR = _ROOT / ".." / "shared" / "eval" / "widerface-dev"
PHOTO = "0--Parade/0_Parade_Parade_0_364"


@dataclass
class VideoRun:
    seconds: float
    detect_seconds: float
    child_cpu_seconds: float
    cpu_seconds: float
    """This process's CPU (every thread) plus the decoding child's."""
    frames: list[npt.NDArray[np.uint8]]


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_video(
    path: Path, detector: FaceDetector, options: DetectOptions, sampling: Sampling, keep: bool
) -> VideoRun:
    cpu_before = child_cpu()
    own_before = time.process_time()
    started = time.perf_counter()
    detect_seconds = 0.0
    frames: list[npt.NDArray[np.uint8]] = []
    tracker = Tracker(sampling.interval_ms)
    async with await VideoDecoder().open(str(path), sampling) as session:
        async for frame in session.frames():
            t = time.perf_counter()
            height, width = frame.pixels.shape[:2]
            faces = detector.detect(DecodedImage(frame.pixels, width, height, "video"), options)
            tracker.update(frame.timestamp_ms, faces)
            for face in faces:
                face_quality(frame.pixels, face_box(face))
            detect_seconds += time.perf_counter() - t
            if keep:
                frames.append(frame.pixels.copy())
    seconds = time.perf_counter() - started
    child = child_cpu() - cpu_before
    own = time.process_time() - own_before
    return VideoRun(seconds, detect_seconds, child, own + child, frames)


def run_still(
    jpegs: list[bytes], detector: FaceDetector, options: DetectOptions
) -> tuple[float, float]:
    """Wall and CPU seconds for decoding and detecting every JPEG."""
    decoder = PillowDecoder()
    started, cpu = time.perf_counter(), time.process_time()
    for data in jpegs:
        detector.detect(decoder.decode(data, "image/jpeg"), options)
    return time.perf_counter() - started, time.process_time() - cpu


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dev_dir", nargs="?", type=Path, default=DEV_DIR)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--mode", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    print(f"before: {uptime()}")

    dataset = load_widerface(args.dev_dir.resolve())
    index = [image.key for image in dataset.images].index(PHOTO)
    detector = build_detector(threads=args.threads, mode=args.mode)
    options = DetectOptions()
    sampling = Sampling(interval_ms=args.interval_ms, max_frames=3600)
    with tempfile.TemporaryDirectory(prefix="facelens-video-speed-") as tmp:
        t = time.perf_counter()
        clip = make_clip(
            dataset.images[index].path,
            dataset.ground_truth[index].boxes,
            Path(tmp) / "clip.mp4",
            size=(width, height),
            fps=args.fps,
            seconds=args.seconds,
        )
        made = time.perf_counter() - t
        size_mb = clip.path.stat().st_size / 1e6
        print(
            f"clip: {width}x{height} H.264 {args.fps} fps {args.seconds:g} s, {size_mb:.1f} MB "
            f"(made in {made:.0f} s); interval {args.interval_ms} ms; detector {detector.name}"
        )
        first = asyncio.run(run_video(clip.path, detector, options, sampling, keep=True))
        jpegs = []
        for pixels in first.frames:
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            jpegs.append(buffer.getvalue())
        count = len(jpegs)
        videos: list[VideoRun] = []
        stills: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            stills.append(run_still(jpegs, detector, options))
            videos.append(asyncio.run(run_video(clip.path, detector, options, sampling, False)))
    video = min(videos, key=lambda r: r.seconds)
    still = min(wall for wall, _ in stills)
    video_cpu = min(r.cpu_seconds for r in videos)
    still_cpu = min(cpu for _, cpu in stills)
    video_ms = 1000 * video.seconds / count
    still_ms = 1000 * still / count
    wait_ms = 1000 * (video.seconds - video.detect_seconds) / count
    child_ms = 1000 * video.child_cpu_seconds / count
    print(
        "| path | frames | frames/s | wall ms/frame | CPU ms/frame "
        "| decode wait ms/frame | decode CPU ms/frame |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| video, {args.interval_ms} ms | {count} | {count / video.seconds:.2f} | "
        f"{video_ms:.0f} | {1000 * video_cpu / count:.0f} | {wait_ms:.1f} | {child_ms:.1f} |"
    )
    print(
        f"| still JPEG q90 | {count} | {count / still:.2f} | {still_ms:.0f} "
        f"| {1000 * still_cpu / count:.0f} | - | - |"
    )
    print(
        f"cost per analysed frame / still JPEG: wall {video_ms / still_ms:.3f}, "
        f"CPU {video_cpu / still_cpu:.3f} (goal <= 1.15)"
    )
    print(
        f"runs (wall s): video {[round(r.seconds, 2) for r in videos]}, "
        f"still {[round(w, 2) for w, _ in stills]}"
    )
    print(f"after: {uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
