"""The sandboxed decoder on real clips made here: every accepted format, exact frame
choice (with seeking and with B-frames), WebP and GIF frame sequences, and the child
killed when its session is left early.

Frame i of a test clip has the grey level `frame_value(i)` in its lower-right
quadrant, so each returned frame's pixels prove which frame it really is.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facelens.adapters.video import VideoDecoder, VideoFrame
from facelens.core.video import Sampling
from tests.support import hostile_videos as hv


async def frames_of(
    path: Path, sampling: Sampling, lo: int = 0, hi: int | None = None
) -> list[VideoFrame]:
    async with await VideoDecoder().open(str(path), sampling, lo, hi) as session:
        return [frame async for frame in session.frames()]


def assert_true_frames(frames: list[VideoFrame], tolerance: int = 6) -> None:
    for frame in frames:
        height, width = frame.pixels.shape[:2]
        level = float(frame.pixels[height * 3 // 4 :, width * 3 // 4 :].mean())
        assert abs(level - hv.frame_value(frame.index)) <= tolerance, (frame.index, level)


@pytest.mark.parametrize(
    ("codec", "container", "suffix", "label", "name"),
    [
        ("libx264", "mp4", "mp4", "mp4", "h264"),
        ("libx264", "mov", "mov", "mov", "h264"),
        ("libx265", "mp4", "mp4", "mp4", "hevc"),
        ("libvpx", "webm", "webm", "webm", "vp8"),
        ("libvpx-vp9", "webm", "webm", "webm", "vp9"),
        ("libsvtav1", "matroska", "mkv", "mkv", "av1"),
    ],
)
async def test_formats(
    tmp_path: Path, codec: str, container: str, suffix: str, label: str, name: str
) -> None:
    clip = hv.h264_clip(
        tmp_path / f"c.{suffix}", codec=codec, container=container, frames=30, width=160, height=128
    )
    async with await VideoDecoder().open(str(clip), Sampling(interval_ms=200)) as session:
        frames = [frame async for frame in session.frames()]
    assert session.plan is not None
    info = session.plan.info
    assert (info.container, info.codec, info.width, info.height) == (label, name, 160, 128)
    assert (info.frame_count, info.fps, info.duration_ms) == (30, 25.0, 1200)
    assert [(f.index, f.timestamp_ms) for f in frames] == [(5 * k, 200 * k) for k in range(6)]
    assert session.plan.timestamps_ms == [200 * k for k in range(6)]
    assert_true_frames(frames)


async def test_seeking_and_b_frames_give_the_exact_frames(tmp_path: Path) -> None:
    # 12 s at 25 fps, a keyframe every 10 frames, B-frames: the decoder seeks between
    # grid points and must still land on the first frame at or after each one.
    clip = hv.h264_clip(tmp_path / "long.mp4", frames=300, gop=10, preset="veryfast")
    frames = await frames_of(clip, Sampling(interval_ms=1000))
    assert [(f.index, f.timestamp_ms) for f in frames] == [(25 * k, 1000 * k) for k in range(12)]
    assert_true_frames(frames)
    # every frame, a window, a cap; and the same frames when decoded as two segments
    window = await frames_of(clip, Sampling(interval_ms=0, start_ms=2000, end_ms=2400))
    assert [f.index for f in window] == list(range(50, 60))
    assert_true_frames(window)
    capped = await frames_of(clip, Sampling(interval_ms=130, max_frames=7))
    halves = await frames_of(clip, Sampling(interval_ms=130, max_frames=7), 0, 480)
    halves += await frames_of(clip, Sampling(interval_ms=130, max_frames=7), 480, None)
    assert len(capped) == 7
    assert [(f.index, f.timestamp_ms) for f in halves] == [
        (f.index, f.timestamp_ms) for f in capped
    ]


async def test_gif_and_animated_webp_are_frame_sequences(tmp_path: Path) -> None:
    pictures = []
    for i in range(6):
        pixels = np.full((48, 64, 3), hv.frame_value(i * 8), dtype=np.uint8)
        pictures.append(Image.fromarray(pixels))
    webp = io.BytesIO()
    pictures[0].save(
        webp,
        format="WEBP",
        save_all=True,
        append_images=pictures[1:],
        duration=[100, 100, 300, 100, 100, 100],
        lossless=True,
    )
    (tmp_path / "a.webp").write_bytes(webp.getvalue())
    frames = await frames_of(tmp_path / "a.webp", Sampling(interval_ms=250))
    # frames start at 0, 100, 200, 500, 600, 700: grid 0, 250, 500, 750
    assert [(f.index, f.timestamp_ms) for f in frames] == [(0, 0), (3, 500)]
    assert [int(f.pixels.mean()) for f in frames] == [hv.frame_value(0), hv.frame_value(24)]

    gif = hv.h264_free_gif(tmp_path / "a.gif", frames=8, width=40, height=30, fps=10)
    async with await VideoDecoder().open(str(gif), Sampling(interval_ms=300)) as session:
        got = [(f.index, f.timestamp_ms) async for f in session.frames()]
    assert session.plan is not None and session.plan.info.codec == "gif"
    assert got == [(0, 0), (3, 300), (6, 600)]


async def test_leaving_a_session_early_kills_the_child(tmp_path: Path) -> None:
    clip = hv.h264_clip(tmp_path / "c.mp4", frames=100)
    session = await VideoDecoder().open(str(clip), Sampling(interval_ms=0))
    async for _ in session.frames():
        break
    process = session._process
    await session.close()
    assert process.returncode is not None
