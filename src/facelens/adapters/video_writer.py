"""Annotated clips for `facelens detect clip.mp4 --draw out.mp4`: PyAV, H.264.

Only the analysed frames are written, each at its own presentation time (time base
1 ms), so the output plays in the source's time: at `--interval-ms 0` it is the
whole clip, at 1000 ms each analysed frame stays on screen for a second. Per face:
its box and five landmarks in a colour fixed per track id (a face keeps its colour
across frames, a switch shows as a colour change) and a plate `#id score`. Lighter
than the still images' drawing (no pose axes), which is unreadable at video sizes.
The container follows the extension (.mp4, .mkv, .mov: H.264 yuv420p; .webm: VP9);
yuv420p needs even sides, so an odd row or column is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from facelens.core.domain import Face

ENCODERS = {".webm": ("libvpx-vp9", {"crf": "32", "b": "0", "deadline": "realtime"})}
DEFAULT_ENCODER = ("libx264", {"crf": "20", "preset": "veryfast"})
MS = Fraction(1, 1000)


def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright colour per id (golden-ratio hues), the same every run."""
    hue = (track_id * 0.618033988749895) % 1.0
    k = np.array([5.0, 3.0, 1.0]) + hue * 6
    rgb = 1 - np.clip(np.minimum(k % 6, 4 - k % 6), 0, 1)
    return (
        int(255 * (0.35 + 0.65 * rgb[0])),
        int(255 * (0.35 + 0.65 * rgb[1])),
        int(255 * (0.35 + 0.65 * rgb[2])),
    )


class AnnotatedClipWriter:
    """`with AnnotatedClipWriter(path) as w: w.add(timestamp_ms, pixels, faces, ids)`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self._out: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._last_pts = -1

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self.path), mode="w")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open_stream(self, width: int, height: int) -> av.VideoStream:
        assert self._out is not None
        codec, options = ENCODERS.get(self.path.suffix.lower(), DEFAULT_ENCODER)
        stream = self._out.add_stream(codec, rate=1000, options=options)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = MS
        stream.codec_context.time_base = MS
        return stream

    def add(
        self,
        timestamp_ms: int,
        pixels: npt.NDArray[np.uint8],
        faces: Sequence[Face],
        track_ids: Sequence[int],
    ) -> None:
        height, width = pixels.shape[:2]
        even_w, even_h = width - width % 2, height - height % 2
        if self._stream is None:
            self._stream = self._open_stream(even_w, even_h)
        canvas = Image.fromarray(pixels).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        line = max(2, round(max(width, height) / 400))
        font = ImageFont.load_default(size=max(12, round(max(width, height) / 55)))
        for face, track_id in zip(faces, track_ids, strict=True):
            color = track_color(track_id)
            x1, y1 = face.x, face.y
            draw.rectangle((x1, y1, x1 + face.width, y1 + face.height), outline=color, width=line)
            text = f"#{track_id} {face.score:.2f}"
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            w, h = right - left + 4, bottom - top + 4
            y = y1 - h if y1 >= h else y1 + face.height
            draw.rectangle((x1, y, x1 + w, y + h), fill=color)
            draw.text((x1 + 2 - left, y + 2 - top), text, fill=(0, 0, 0), font=font)
            for px, py in face.landmarks.values():
                draw.ellipse((px - line, py - line, px + line, py + line), fill=color)
        array = np.asarray(canvas, dtype=np.uint8)[:even_h, :even_w]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = max(timestamp_ms, self._last_pts + 1)
        frame.time_base = MS
        self._last_pts = frame.pts
        assert self._out is not None
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._out is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
        self._out.close()
        self._out = None
