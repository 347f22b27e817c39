"""Hostile video files, made here, through the real sandboxed decoder.

Each must end in a clean VideoFailure with its stable code, with the child's memory
bounded by its RLIMIT_AS and the calling process's memory untouched; afterwards the
same decoder still decodes an ordinary clip. (The end-to-end variant, a worker that
fails the task with result_code -1 and then finishes an ordinary task, is in
test_video_tasks.py.)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from facelens.adapters.video import DecodeLimits, VideoDecoder
from facelens.core.errors import VideoFailure
from facelens.core.video import Sampling
from tests.support import hostile_videos as hv

MEMORY = 1 << 30


async def decode_all(decoder: VideoDecoder, path: Path, sampling: Sampling) -> int:
    count = 0
    async with await decoder.open(str(path), sampling) as session:
        async for _ in session.frames():  # counted, not kept: the memory check is ours
            count += 1
    return count


CASES: list[tuple[str, Callable[[Path], Path], str, str]] = [
    ("truncated mp4 (index lost)", hv.truncated_mp4, "VIDEO_DECODE_FAILED", "moov"),
    ("truncated mp4 (index first)", hv.truncated_faststart_mp4, "VIDEO_DECODE_FAILED", "trunc"),
    ("random bytes as video/mp4", hv.random_bytes, "VIDEO_FORMAT_UNSUPPORTED", "supported"),
    ("30,000 x 30,000 frames", hv.huge_canvas_gif, "VIDEO_TOO_LARGE", "30000x30000"),
    ("zero frames", hv.zero_frames, "NO_VIDEO_STREAM", "no video"),
    ("audio only", hv.audio_only, "NO_VIDEO_STREAM", "no video"),
    ("sparse 10-hour clip", hv.sparse_long, "VIDEO_TOO_LONG", "36000 s"),
    ("40 video streams", hv.many_streams, "VIDEO_FORMAT_UNSUPPORTED", "40 streams"),
    ("GIF of 10,000 frames", hv.gif_10000_frames, "VIDEO_TOO_LONG", "more than 5000 frames"),
]


def test_each_hostile_file_fails_cleanly_with_bounded_memory(tmp_path: Path) -> None:
    # In a fresh interpreter: RUSAGE_CHILDREN is the peak of every child a process has
    # ever waited for, and a long pytest run has waited for `serve` processes with
    # models loaded; its own peak RSS moves with whatever ran before. A process whose
    # only children are decoders measures just them.
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    measured = json.loads(run.stdout.strip().splitlines()[-1])
    assert measured["children_kb"] * 1024 < MEMORY, measured
    assert measured["grown_kb"] < 100_000, f"the measuring process grew: {measured}"
    assert measured["after"] == 3  # the decoder is unharmed: an ordinary clip right after


REPO_ROOT = Path(__file__).resolve().parents[2]
_MEASURE = (
    "import asyncio, json, sys; from pathlib import Path; "
    "from tests.integration.test_hostile_video import decode_every_hostile_file; "
    "print(json.dumps(asyncio.run(decode_every_hostile_file(Path(sys.argv[1])))))"
)


async def decode_every_hostile_file(tmp_path: Path) -> dict[str, int]:
    """Each hostile file fails with its code and words; then the peak memory of the
    decoding children, this process's growth, and an ordinary clip's frame count."""
    # Two CPU seconds: plenty for any honest small file here.
    decoder = VideoDecoder(DecodeLimits(memory_bytes=MEMORY, cpu_seconds=2))
    files = [(name, make(tmp_path), code, words) for name, make, code, words in CASES]
    own_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, path, code, words in files:
        try:
            await decode_all(decoder, path, Sampling())
        except VideoFailure as failure:
            assert failure.error_code == code, (name, failure.message)
            assert words in failure.message, (name, failure.message)
            assert str(tmp_path) not in failure.message  # no server path leaks
        else:
            raise AssertionError(f"{name}: decoded without a failure")
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - own_before
    clip = hv.h264_clip(tmp_path / "ok.mp4", frames=30)
    after = await decode_all(decoder, clip, Sampling(interval_ms=400))
    return {"children_kb": children_kb, "grown_kb": grown_kb, "after": after}


async def test_cpu_limit_stops_a_runaway_decode(tmp_path: Path) -> None:
    # 4,000 one-pixel updates of a 1024 x 1024 canvas, every frame wanted: each is a
    # 4 MB canvas to convert and send, far more than two CPU seconds in all.
    bomb = hv.gif_10000_frames(tmp_path, frames=4000)
    decoder = VideoDecoder(DecodeLimits(cpu_seconds=2))
    with pytest.raises(VideoFailure) as failure:
        await decode_all(decoder, bomb, Sampling(interval_ms=0, max_frames=3600))
    assert failure.value.error_code == "VIDEO_DECODE_FAILED"
    assert "CPU-time limit" in failure.value.message


async def test_memory_limit_stops_the_child_not_the_caller(tmp_path: Path) -> None:
    # 8K frames: about 50 MB each in YUV, 100 MB in RGB, several held by the decoder.
    clip = hv.h264_clip(tmp_path / "8k.mp4", frames=2, width=7680, height=4320)
    with pytest.raises(VideoFailure) as failure:
        await decode_all(VideoDecoder(DecodeLimits(memory_bytes=400 << 20)), clip, Sampling())
    assert failure.value.error_code == "VIDEO_DECODE_FAILED"
    assert await decode_all(VideoDecoder(), clip, Sampling(interval_ms=0)) == 2


async def test_duration_and_pixel_limits_are_settings(tmp_path: Path) -> None:
    clip = hv.h264_clip(tmp_path / "c.mp4", frames=50)  # 2 s, 320 x 240
    with pytest.raises(VideoFailure) as too_long:
        await VideoDecoder(DecodeLimits(max_seconds=1)).probe(str(clip), Sampling())
    assert too_long.value.error_code == "VIDEO_TOO_LONG"
    with pytest.raises(VideoFailure) as too_large:
        await VideoDecoder(DecodeLimits(max_pixels=320 * 240 - 1)).probe(str(clip), Sampling())
    assert too_large.value.error_code == "VIDEO_TOO_LARGE"
