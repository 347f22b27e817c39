"""Hostile and odd video files, made by the tests with PyAV (nothing downloaded).

Each maker writes one small file under `directory` and returns its path. They are
built to hit one defence each: the format sniffing, the header checks (streams,
codec, frame size, duration), the packet index and the decoder's resource limits.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def frame_value(index: int) -> int:
    """The grey level of the lower-right quadrant of frame `index` in `h264_clip` & co."""
    return (5 * index) % 256


def _frame(width: int, height: int, value: int) -> av.VideoFrame:
    pixels = np.full((height, width, 3), value % 256, dtype=np.uint8)
    pixels[: height // 2, : width // 2] = (value * 7) % 256
    return av.VideoFrame.from_ndarray(pixels, format="rgb24")


def h264_clip(
    path: Path,
    *,
    frames: int = 50,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    container: str = "mp4",
    faststart: bool = False,
    gop: int | None = None,
    preset: str = "ultrafast",
    codec: str = "libx264",
) -> Path:
    """An ordinary H.264 clip whose frame i is filled with `frame_value(i)` (easy to
    check); preset "veryfast" adds B-frames (presentation order differs from decoding)."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": preset, **({"g": str(gop)} if gop else {})}
        elif codec == "libx265":
            stream.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
        elif codec == "libsvtav1":
            stream.options = {"preset": "12"}
        elif gop:
            stream.options = {"g": str(gop)}
        for i in range(frames):
            for packet in stream.encode(_frame(width, height, 5 * i)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def truncated_mp4(directory: Path) -> Path:
    """An MP4 cut in half: its index (moov, written last) is gone."""
    whole = h264_clip(directory / "whole.mp4", frames=60)
    data = whole.read_bytes()
    path = directory / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_faststart_mp4(directory: Path) -> Path:
    """An MP4 with its index first, cut in half: the index points past the end."""
    whole = h264_clip(directory / "whole-fs.mp4", frames=60, faststart=True)
    data = whole.read_bytes()
    path = directory / "truncated-fs.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def random_bytes(directory: Path, size: int = 200_000) -> Path:
    path = directory / "random.mp4"
    path.write_bytes(os.urandom(size))
    return path


def huge_canvas_gif(directory: Path, side: int = 30_000) -> Path:
    """A GIF whose header declares a side x side canvas holding a 16 x 16 frame."""
    small = h264_free_gif(directory / "small.gif", frames=2, width=16, height=16)
    data = bytearray(small.read_bytes())
    data[6:8] = side.to_bytes(2, "little")
    data[8:10] = side.to_bytes(2, "little")
    path = directory / "huge-canvas.gif"
    path.write_bytes(bytes(data))
    return path


def h264_free_gif(path: Path, *, frames: int, width: int, height: int, fps: int = 10) -> Path:
    with av.open(str(path), "w", format="gif") as out:
        stream = out.add_stream("gif", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb8"
        for i in range(frames):
            for packet in stream.encode(_frame(width, height, 40 * i)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def zero_frames(directory: Path) -> Path:
    """An MP4 whose one video track has not one sample."""
    path = directory / "empty.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
    return path


def audio_only(directory: Path) -> Path:
    path = directory / "audio.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        stream.layout = "mono"
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 8000
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def sparse_long(directory: Path, hours: int = 10) -> Path:
    """Two frames ten hours apart: tiny file, huge duration."""
    path = directory / "sparse.mkv"
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate((0, hours * 3_600_000)):
            frame = _frame(64, 64, i)
            frame.pts = pts
            frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def many_streams(directory: Path, count: int = 40) -> Path:
    """One Matroska file with `count` video streams of a few frames each."""
    path = directory / "streams.mkv"
    with av.open(str(path), "w", format="matroska") as out:
        streams = []
        for _ in range(count):
            stream = out.add_stream("mpeg4", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
            streams.append(stream)
        for i in range(3):
            for stream in streams:
                for packet in stream.encode(_frame(32, 32, i)):
                    out.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                out.mux(packet)
    return path


def gif_10000_frames(directory: Path, frames: int = 10_000, side: int = 1024) -> Path:
    """A GIF of `frames` 1 x 1 updates on a side x side canvas: a small file (23 bytes
    a frame) whose every frame is a whole canvas once decoded."""
    header = bytearray(b"GIF89a")
    header += side.to_bytes(2, "little") + side.to_bytes(2, "little")
    header += bytes([0xF0, 0, 0])  # global colour table of 2 entries
    header += bytes([0, 0, 0, 255, 255, 255])
    body = bytearray()
    for i in range(frames):
        body += bytes([0x21, 0xF9, 4, 0, 1, 0, 0, 0])  # graphic control: 10 ms
        x, y = i % side, (i // side) % side
        body += bytes([0x2C]) + x.to_bytes(2, "little") + y.to_bytes(2, "little")
        body += (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + bytes([0])
        body += bytes([2, 2, 0x4C, 0x01, 0])  # LZW: min code 2, one pixel of colour 1
    path = directory / "many-frames.gif"
    path.write_bytes(bytes(header) + bytes(body) + b"\x3b")
    return path
