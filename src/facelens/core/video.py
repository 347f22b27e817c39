"""Video sampling and segment arithmetic, pure and exact.

Timestamps are kept as integer presentation times (pts) in the stream's time base
`num/den` seconds, so "the first frame whose presentation time is >= the grid point"
is decided in integers, never in floats that could put a frame on the wrong side of a
grid point. A frame's time in milliseconds from the stream start is
`(pts - first_pts) * num * 1000 / den`; the integer `timestamp_ms` reported to users
is its floor, so a frame never appears to come before the grid point that chose it.

`end_ms` is exclusive: a frame at exactly `end_ms` is not analysed. Segments use the
same half-open ranges, so a frame belongs to exactly one segment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: the domain (and the admin commands) never load NumPy
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Sampling:
    """Which frames a task analyses (the `additional_params` video options)."""

    interval_ms: int = 1000
    """Grid spacing; 0 means every frame."""
    max_frames: int = 300
    start_ms: int = 0
    end_ms: int | None = None
    """Exclusive; None = to the end of the stream."""

    def __post_init__(self) -> None:
        if self.interval_ms < 0 or self.max_frames < 1 or self.start_ms < 0:
            raise ValueError("interval_ms >= 0, max_frames >= 1 and start_ms >= 0 are required")
        if self.end_ms is not None and self.end_ms < self.start_ms:
            raise ValueError("end_ms must not be before start_ms")

    def to_json(self) -> dict[str, int | None]:
        return {
            "interval_ms": self.interval_ms,
            "max_frames": self.max_frames,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sampling:
        """What `to_json` wrote (other keys, e.g. the probed "info", are ignored)."""
        end = data.get("end_ms")
        return cls(
            interval_ms=int(data.get("interval_ms", 1000)),
            max_frames=int(data.get("max_frames", 1)),
            start_ms=int(data.get("start_ms") or 0),
            end_ms=None if end is None else int(end),
        )


@dataclass(frozen=True, slots=True)
class TimeBase:
    """A stream's time base: one pts tick is num/den seconds."""

    num: int
    den: int

    def __post_init__(self) -> None:
        if self.num <= 0 or self.den <= 0:
            raise ValueError("a time base is a positive fraction")

    def ms_floor(self, ticks: int) -> int:
        """Whole milliseconds in `ticks` pts ticks (floor)."""
        return (ticks * self.num * 1000) // self.den


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What probing a video found (the complete callback's `video` object, mostly)."""

    container: str
    codec: str
    width: int
    height: int
    duration_ms: int
    fps: float
    frame_count: int
    """Frames in the stream (exact: counted from the demuxed packets)."""

    def to_json(self, frames_analysed: int) -> dict[str, object]:
        return {
            "width": self.width,
            "height": self.height,
            "duration_ms": self.duration_ms,
            "fps": round(self.fps, 3),
            "codec": self.codec,
            "frames_analysed": frames_analysed,
        }

    def stored(self) -> dict[str, Any]:
        """Every field, as kept with the task once probed and as the decoding child
        sends it (`from_stored` reads it)."""
        return {
            "container": self.container,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "duration_ms": self.duration_ms,
            "fps": self.fps,
            "frame_count": self.frame_count,
        }

    @classmethod
    def from_stored(cls, data: Any) -> VideoInfo | None:
        """`stored()` back; None when the video was not probed yet."""
        if not isinstance(data, dict):
            return None
        return cls(
            container=str(data["container"]),
            codec=str(data["codec"]),
            width=int(data["width"]),
            height=int(data["height"]),
            duration_ms=int(data["duration_ms"]),
            fps=float(data["fps"]),
            frame_count=int(data["frame_count"]),
        )


@dataclass(frozen=True, slots=True)
class VideoPlan:
    """The probed video and the times of every frame the sampling picks (whole video)."""

    info: VideoInfo
    timestamps_ms: list[int]


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One decoded frame to analyse: its index in the stream, its time, RGB pixels."""

    index: int
    timestamp_ms: int
    pixels: npt.NDArray[np.uint8] = field(repr=False)


_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)


def looks_like_video(head: bytes) -> bool:
    """An MP4/MOV (an ISO file whose brand is not a still-image one) or Matroska/WebM
    file, from its first bytes: what the synchronous endpoint sends to the task API."""
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return True
    return head[4:8] == b"ftyp" and head[8:12] not in _IMAGE_BRANDS


def select_frames(pts_sorted: Sequence[int], time_base: TimeBase, sampling: Sampling) -> list[int]:
    """Indices (ranks in presentation order) of the frames the sampling picks.

    `pts_sorted` are every frame's pts in ascending order; times count from the first.
    For each grid point `start_ms + k * interval_ms`, the first frame at or after it;
    a frame that several grid points land on is analysed once. At most `max_frames`.
    """
    if not pts_sorted:
        return []
    first = pts_sorted[0]
    scale = time_base.num * 1000  # ticks * scale = ms * den
    den = time_base.den
    grid = sampling.start_ms * den  # the next grid point, in ms * den
    end = None if sampling.end_ms is None else sampling.end_ms * den
    step = sampling.interval_ms * den
    chosen: list[int] = []
    for index, pts in enumerate(pts_sorted):
        at = (pts - first) * scale
        if end is not None and at >= end:
            break
        if at < grid:
            continue
        chosen.append(index)
        if len(chosen) >= sampling.max_frames:
            break
        if step == 0:
            grid = at + 1  # every later frame (equal pts are one picture shown once)
        else:
            start = sampling.start_ms * den
            grid = start + ((at - start) // step + 1) * step
    return chosen


@dataclass(frozen=True, slots=True)
class Segment:
    """A half-open time range [start_ms, end_ms) of one video task, analysed alone."""

    index: int
    start_ms: int
    end_ms: int
    frames: int
    """Frames the sampling picks inside it."""


def plan_segments(timestamps_ms: Sequence[int], segment_ms: int) -> list[Segment]:
    """Split the chosen frames' times into segments of `segment_ms` (empty ones dropped).

    Boundaries sit on multiples of `segment_ms` from the stream start, so they do not
    depend on where sampling starts; the last segment is open-ended (end = the last
    chosen time + 1). With no frames there is no segment.
    """
    if segment_ms <= 0:
        raise ValueError("segment_ms must be positive")
    counts: dict[int, int] = {}
    for ts in timestamps_ms:
        slot = ts // segment_ms
        counts[slot] = counts.get(slot, 0) + 1
    slots = sorted(counts)
    segments: list[Segment] = []
    for position, slot in enumerate(slots):
        start = 0 if position == 0 else slot * segment_ms
        last = position == len(slots) - 1
        end = max(timestamps_ms) + 1 if last else slots[position + 1] * segment_ms
        segments.append(Segment(position, start, end, counts[slot]))
    return segments
