"""Decoding cost per analysed frame: the sandboxed decoder alone (no detection).

    .venv/bin/python bench/decode_video.py CLIP [--interval-ms 1000] [--max-frames 300]

Runs the real decoding child (`facelens.adapters.video.VideoDecoder`) twice over the clip
with the given sampling and prints, per analysed frame, the wall time seen by the caller
and the child's CPU time (its start, probing, indexing, decoding, RGB conversion and
the pipe), read from RUSAGE_CHILDREN. Report the machine load (`uptime`) with it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time

from facelens.adapters.video import VideoDecoder
from facelens.core.video import Sampling


async def measure(path: str, sampling: Sampling) -> tuple[int, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    frames = 0
    async with await VideoDecoder().open(path, sampling) as session:
        async for _ in session.frames():
            frames += 1
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return frames, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--max-frames", type=int, default=300)
    args = parser.parse_args()
    sampling = Sampling(interval_ms=args.interval_ms, max_frames=args.max_frames)
    for run in (1, 2):
        frames, wall, cpu = asyncio.run(measure(args.clip, sampling))
        per = max(frames, 1)
        print(
            f"run {run}: {frames} frames, {1000 * wall / per:.1f} ms wall and "
            f"{1000 * cpu / per:.1f} ms child CPU per analysed frame"
        )


if __name__ == "__main__":
    main()
