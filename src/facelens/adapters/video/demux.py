"""Probe, index and decode one video with PyAV. Runs ONLY inside the sandbox child.

The order is the safety argument: the container's header is read and checked (number
of streams, a video stream, an accepted codec, frame size against the pixel limit,
declared duration against the duration limit) before any packet is demuxed; the
packets are then indexed without decoding (count and duration checked again, since a
header can lie) and only then are frames decoded.

The index (every frame's pts and whether it is a keyframe) makes sampling exact and
cheap: the frames to analyse are known before decoding starts, so the decoder seeks to
the keyframe before a wanted frame when that keyframe lies ahead of where decoding
stands, and decodes straight through otherwise; only wanted frames are converted to
RGB. Frame indices are ranks in presentation order, the same in every segment.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from facelens.adapters.video.formats import ALLOWED_CODECS, SUPPORTED, Container, sniff_container
from facelens.core.errors import (
    NoVideoStream,
    VideoDecodeFailed,
    VideoFormatUnsupported,
    VideoTooLarge,
    VideoTooLong,
)
from facelens.core.video import Sampling, TimeBase, VideoInfo, select_frames

MAX_STREAMS = 32
"""More streams than any real file has; beyond it the container is refused."""
MAX_FPS = 240
"""Frames per second of duration a stream may hold: its frame count is bounded by it."""
MAX_SEQUENCE_FRAMES = 5000
"""Frames an animated GIF or WebP may hold. Each of their frames is drawn over the
previous canvas, so every frame up to the last sampled one must be decoded (no
keyframes to seek to): the work grows with the frame count, and animated images in
use (stickers, reactions, short loops) stay far below this."""
SEEK_MIN_GAP = 3
"""Seek only when the keyframe before the next wanted frame is this many frames ahead."""
SKIPS_NONREF = frozenset({"h264", "hevc"})
"""Codecs whose decoders mark non-reference frames reliably, so unwanted ones are skipped."""
TRUNCATION_SLACK = 2
"""Frames an MP4 index may list beyond those present before the file counts as cut."""
_ALPHA_FORMATS = frozenset({"bgra", "rgba", "argb", "abgr", "pal8", "yuva420p"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_pixels: int
    max_seconds: int

    def check_frame_size(self, width: int, height: int) -> None:
        """Refuse frames over `max_pixels` (from the header, before any is decoded)."""
        if width * height > self.max_pixels:
            raise VideoTooLarge(
                f"frames are {width}x{height} = {width * height} pixels, the limit is "
                f"{self.max_pixels}"
            )


@dataclass(frozen=True, slots=True)
class Frame:
    index: int
    timestamp_ms: int
    pixels: npt.NDArray[np.uint8]
    """RGB, height x width x 3."""


@dataclass(frozen=True, slots=True)
class Index:
    pts: list[int]
    """Every frame's pts, ascending."""
    keyframes: list[int]
    """The keyframes' pts, ascending."""
    time_base: TimeBase

    def ms(self, pts: int) -> int:
        return self.time_base.ms_floor(pts - self.pts[0])


def open_video(path: str, limits: Limits) -> tuple[Container, av.container.InputContainer | None]:
    """Sniff the file; refuse unknown formats before FFmpeg or Pillow sees them."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        raise VideoDecodeFailed("the video file is empty (0 bytes)")
    container = sniff_container(head)
    if container is None:
        raise VideoFormatUnsupported(f"not a supported video format; supported: {SUPPORTED}")
    if container.demuxer is None:
        return container, None
    if container.label == "gif":
        _check_gif_screen(head, limits)
    try:
        opened = av.open(path, format=container.demuxer, options={"protocol_whitelist": "file"})
    except av.error.FFmpegError as exc:
        raise VideoDecodeFailed(f"cannot read the {container.label} container: {why(exc)}") from exc
    return container, opened


def why(exc: av.error.FFmpegError) -> str:
    """FFmpeg's reason without the file name (a server path is nobody's business)."""
    reason = str(exc.strerror or "error").rstrip(".")
    detail = exc.log[2].strip() if exc.log and len(exc.log) > 2 and exc.log[2] else ""
    return f"{reason} ({detail})" if detail else reason


def _check_gif_screen(head: bytes, limits: Limits) -> None:
    """A GIF's canvas (logical screen) from its header: FFmpeg would allocate it whole."""
    width = int.from_bytes(head[6:8], "little")
    height = int.from_bytes(head[8:10], "little")
    if width * height > limits.max_pixels:
        raise VideoTooLarge(
            f"the GIF canvas is {width}x{height} = {width * height} pixels, the limit is "
            f"{limits.max_pixels}"
        )


def check_header(container: Container, opened: av.container.InputContainer, limits: Limits) -> None:
    """Streams, codec, frame size and declared duration, before any packet is read."""
    if len(opened.streams) > MAX_STREAMS:
        raise VideoFormatUnsupported(
            f"the container holds {len(opened.streams)} streams; at most {MAX_STREAMS} accepted"
        )
    if not opened.streams.video:
        raise NoVideoStream(f"the {container.label} file has no video stream")
    stream = opened.streams.video[0]
    codec = stream.codec_context.codec.canonical_name
    if codec not in ALLOWED_CODECS:
        raise VideoFormatUnsupported(
            f"video codec {codec} is not supported; supported: {SUPPORTED}"
        )
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise VideoDecodeFailed(f"the video stream declares an empty frame size {width}x{height}")
    limits.check_frame_size(width, height)
    declared = _declared_seconds(opened, stream)
    if declared is not None and declared > limits.max_seconds:
        raise VideoTooLong(f"the video lasts {declared:.0f} s, the limit is {limits.max_seconds} s")


def _declared_seconds(opened: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if opened.duration is not None:
        return opened.duration / 1_000_000
    return None


def build_index(opened: av.container.InputContainer, limits: Limits) -> Index:
    """Demux (no decoding) the first video stream: every frame's pts and keyframes."""
    stream = opened.streams.video[0]
    base = stream.time_base or Fraction(1, 1000)
    time_base = TimeBase(base.numerator, base.denominator)
    sequence = stream.codec_context.codec.canonical_name == "gif"
    most = MAX_SEQUENCE_FRAMES if sequence else limits.max_seconds * MAX_FPS
    pts: list[int] = []
    keyframes: list[int] = []
    previous = -1
    try:
        for packet in opened.demux(stream):
            if packet.size == 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                stamp = previous + 1
            previous = stamp
            pts.append(stamp)
            if packet.is_keyframe:
                keyframes.append(stamp)
            if len(pts) > most:
                what = "an animated GIF" if sequence else "the video stream"
                raise VideoTooLong(f"{what} holds more than {most} frames")
    except av.error.FFmpegError as exc:
        raise VideoDecodeFailed(f"the video stream cannot be read: {why(exc)}") from exc
    if not pts:
        raise NoVideoStream("the video stream holds no frames")
    declared = stream.frames
    if declared > 0 and len(pts) + TRUNCATION_SLACK < declared:
        raise VideoDecodeFailed(
            f"the file is truncated: its index lists {declared} frames, {len(pts)} are present"
        )
    pts.sort()
    keyframes.sort()
    index = Index(pts, keyframes or [pts[0]], time_base)
    if index.ms(pts[-1]) > limits.max_seconds * 1000:
        raise VideoTooLong(
            f"the video's frames span {index.ms(pts[-1]) / 1000:.0f} s, the limit is "
            f"{limits.max_seconds} s"
        )
    return index


def describe(container: Container, opened: av.container.InputContainer, index: Index) -> VideoInfo:
    stream = opened.streams.video[0]
    count = len(index.pts)
    span_ms = index.ms(index.pts[-1])
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else (count * 1000 / span_ms if span_ms > 0 else 0.0)
    frame_ms = round(1000 / fps) if fps > 0 else 0
    declared = _declared_seconds(opened, stream)
    duration_ms = max(span_ms + frame_ms, round(declared * 1000) if declared else 0)
    return VideoInfo(
        container=container.label,
        codec=stream.codec_context.codec.canonical_name,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        duration_ms=duration_ms,
        fps=fps,
        frame_count=count,
    )


def wanted(index: Index, sampling: Sampling, lo_ms: int, hi_ms: int | None) -> list[int]:
    """The pts of the frames to analyse inside [lo_ms, hi_ms) (a segment, or all)."""
    chosen = [index.pts[i] for i in select_frames(index.pts, index.time_base, sampling)]
    return [p for p in chosen if index.ms(p) >= lo_ms and (hi_ms is None or index.ms(p) < hi_ms)]


def decode_frames(
    opened: av.container.InputContainer, index: Index, targets: list[int], can_seek: bool
) -> Iterator[Frame]:
    """Decode the target frames (pts, ascending) and yield them as RGB."""
    stream = opened.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = 2
    wanted = frozenset(targets)
    skip = stream.codec_context.codec.canonical_name in SKIPS_NONREF
    position: int | None = None  # pts of the last decoded frame
    frames: Iterator[av.VideoFrame] | None = None
    pending = list(targets)
    while pending:
        target = pending[0]
        key = index.keyframes[max(0, bisect.bisect_right(index.keyframes, target) - 1)]
        if frames is None or (can_seek and position is not None and _gap(index, position, key)):
            frames = _decode_from(opened, stream, key if can_seek else index.pts[0], wanted, skip)
        found = _next_at_or_after(frames, target)
        if found is None:
            return
        frame, pts = found
        position = pts
        while pending and pending[0] <= pts:
            pending.pop(0)
        rank = bisect.bisect_left(index.pts, pts)
        yield Frame(rank, index.ms(pts), to_rgb(frame))


def _gap(index: Index, position: int, key: int) -> bool:
    if key <= position:
        return False
    ahead = bisect.bisect_left(index.pts, key) - bisect.bisect_right(index.pts, position)
    return ahead >= SEEK_MIN_GAP


def _decode_from(
    opened: av.container.InputContainer,
    stream: av.VideoStream,
    key: int,
    wanted: frozenset[int],
    skip: bool,
) -> Iterator[av.VideoFrame]:
    """Seek to the keyframe `key` and decode from there. With `skip`, a frame that is
    not wanted and that no other frame refers to is not decoded at all (FFmpeg's
    skip_frame=NONREF, set per packet): about half of an H.264 stream's frames."""
    try:
        opened.seek(key, stream=stream, backward=True, any_frame=False)
    except av.error.FFmpegError as exc:
        raise VideoDecodeFailed(f"seeking in the video failed: {why(exc)}") from exc
    context = stream.codec_context
    context.flush_buffers()
    try:
        for packet in opened.demux(stream):
            if skip:
                needed = packet.pts is None or packet.pts in wanted or packet.size == 0
                context.skip_frame = "DEFAULT" if needed else "NONREF"
            yield from packet.decode()
    except av.error.FFmpegError as exc:
        raise VideoDecodeFailed(f"the video stream cannot be decoded: {why(exc)}") from exc


def _next_at_or_after(
    frames: Iterator[av.VideoFrame], target: int
) -> tuple[av.VideoFrame, int] | None:
    for frame in frames:
        pts = frame.pts
        if pts is not None and pts >= target:
            return frame, pts
    return None


def to_rgb(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """One decoded frame as RGB; transparency composited on white, as for images."""
    if frame.format.name not in _ALPHA_FORMATS:
        rgb: npt.NDArray[np.uint8] = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
        return rgb
    rgba = frame.to_ndarray(format="rgba").astype(np.uint16)
    alpha = rgba[:, :, 3:4]
    mixed = (rgba[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return mixed.astype(np.uint8)
