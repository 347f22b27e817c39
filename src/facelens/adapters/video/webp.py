"""Animated WebP as a frame sequence, with Pillow (libwebp). Runs inside the sandbox child.

The RIFF chunks are walked first, without decoding anything: the canvas size (VP8X)
and every frame's duration (ANMF) give the pixel and duration checks and the exact
timestamps, so sampling is decided before libwebp decodes a frame. Frames are then
decoded in order (each WebP frame is composited on the previous canvas) and only the
wanted ones are converted to RGB.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator

import numpy as np
from PIL import Image

from facelens.adapters.images import to_rgb
from facelens.adapters.video.demux import MAX_SEQUENCE_FRAMES, Frame, Index, Limits
from facelens.core.errors import VideoDecodeFailed, VideoTooLong
from facelens.core.video import TimeBase, VideoInfo


def scan(path: str, limits: Limits) -> tuple[VideoInfo, Index]:
    """Canvas size and frame times from the RIFF chunks; the limits checked."""
    with open(path, "rb") as handle:
        data = handle.read()
    width = height = 0
    durations: list[int] = []
    offset = 12
    while offset + 8 <= len(data):
        kind = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if kind == b"VP8X" and size >= 10:
            width = 1 + int.from_bytes(data[body + 4 : body + 7], "little")
            height = 1 + int.from_bytes(data[body + 7 : body + 10], "little")
        elif kind == b"ANMF" and size >= 16:
            durations.append(int.from_bytes(data[body + 12 : body + 15], "little"))
            if len(durations) > MAX_SEQUENCE_FRAMES:
                raise VideoTooLong(f"an animated WebP holds more than {MAX_SEQUENCE_FRAMES} frames")
        elif kind in (b"VP8 ", b"VP8L") and not durations and width == 0:
            width, height = _still_size(path)
            durations.append(0)
        offset = body + size + (size & 1)
    if width <= 0 or height <= 0 or not durations:
        raise VideoDecodeFailed("the WebP file has no readable frames")
    limits.check_frame_size(width, height)
    starts = [0]
    for duration in durations[:-1]:
        starts.append(starts[-1] + duration)
    total = starts[-1] + durations[-1]
    if total > limits.max_seconds * 1000:
        raise VideoTooLong(
            f"the WebP lasts {total / 1000:.0f} s, the limit is {limits.max_seconds} s"
        )
    # Equal start times (zero durations) still need distinct, ascending pts.
    pts = [start * len(starts) + i for i, start in enumerate(starts)]
    index = Index(pts, list(pts), TimeBase(1, 1000 * len(starts)))
    fps = len(starts) * 1000 / total if total > 0 else 0.0
    info = VideoInfo("webp", "webp", width, height, total, fps, len(starts))
    return info, index


def _still_size(path: str) -> tuple[int, int]:
    try:
        with Image.open(path, formats=["WEBP"]) as image:
            return image.size
    except Exception as exc:
        raise VideoDecodeFailed(f"cannot read the WebP header ({type(exc).__name__})") from exc


def decode_frames(path: str, index: Index, targets: list[int]) -> Iterator[Frame]:
    try:
        with Image.open(path, formats=["WEBP"]) as image:
            for pts in targets:
                rank = bisect.bisect_left(index.pts, pts)
                image.seek(rank)  # libwebp decodes forward from the last frame shown
                image.load()
                pixels = np.asarray(to_rgb(image), dtype=np.uint8)
                yield Frame(rank, index.ms(pts), pixels)
    except (OSError, EOFError, ValueError) as exc:
        raise VideoDecodeFailed(
            f"the WebP frames cannot be decoded ({type(exc).__name__})"
        ) from exc
