"""The ports of the video use case (application/video_tasks.py).

Kept apart from `ports.py` (the image service's) so the video flow reads as one unit;
the same rules apply: adapters implement them, tests may swap them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from facelens.core.domain import ClaimedTask, JsonObject
from facelens.core.timings import NOT_MEASURED, StageTimes
from facelens.core.video import Sampling, Segment, VideoFrame, VideoInfo, VideoPlan

if TYPE_CHECKING:  # the store imports these ports; it never loads the tracker (NumPy)
    from facelens.core.video_result import VideoResult


class VideoSessionPort(Protocol):
    """One decoding run: `plan` is known once opened; `frames()` streams the frames."""

    plan: VideoPlan | None

    def frames(self) -> AsyncIterator[VideoFrame]: ...
    async def close(self) -> None: ...


class VideoDecoderPort(Protocol):
    async def open(
        self, path: str, sampling: Sampling, lo_ms: int = 0, hi_ms: int | None = None
    ) -> VideoSessionPort:
        """Probe (checks, plan) and start decoding the frames of [lo_ms, hi_ms);
        raises VideoFailure subclasses."""
        ...


class VideoDownloadsPort(Protocol):
    def download(self, url: str) -> AbstractAsyncContextManager[Path]:
        """The video as a local file for the block's duration (deleted after)."""
        ...


@dataclass(frozen=True, slots=True)
class ClaimedSegment:
    """A segment a worker holds under a lease, with what it needs to analyse it."""

    id: int
    task: ClaimedTask
    sampling: Sampling
    seq: int
    start_ms: int
    end_ms: int
    frames: int
    attempts: int


@dataclass(frozen=True, slots=True)
class VideoFinished:
    """A video task that a store call finished: what the metrics count (the caller
    reports it, since only the finishing transaction knows the task ended)."""

    succeeded: bool
    error_code: str
    total_ms: int
    """Submission to outcome."""
    refunded: int
    """Reserved credits given back (the part of `max_frames` not analysed)."""
    stages: StageTimes
    """Summed over the task's segments (the attempt that produced each one)."""


@dataclass(frozen=True, slots=True)
class SegmentRecorded:
    """A held segment was recorded; `finished` when that ended its task."""

    finished: VideoFinished | None


Render = Callable[
    [ClaimedTask, VideoInfo | None, Sequence[JsonObject], tuple[str, str] | None], "VideoResult"
]
"""Builds a finished video's result: (task, probed info, the segments' records in
time order, failure (code, info) or None). Called by the store inside the finishing
transaction, so the last segment and the task's one complete callback commit together."""


class VideoStore(Protocol):
    """The video part of the store; each method is one transaction."""

    async def plan_video(
        self,
        task_id: int,
        worker_id: str,
        info: JsonObject,
        segments: Sequence[Segment],
        lease_ms: int,
        now_ms: int,
    ) -> int | None:
        """Only if `worker_id` still holds the task: store the probed info, insert the
        segments (the first claimed by this worker, the rest queued for any worker),
        set the progress, and hand the task itself to its segments (no lease: the last
        segment finishes it). Returns the first segment's id, or None (task lost)."""
        ...

    async def claim_segment(
        self, worker_id: str, lease_ms: int, now_ms: int
    ) -> ClaimedSegment | None:
        """The oldest queued (or lease-expired) segment, claimed; attempts + 1."""
        ...

    async def renew_segment(self, segment_id: int, worker_id: str, until_ms: int) -> bool: ...

    async def segment_progress(self, segment_id: int, worker_id: str, frames_done: int) -> None:
        """Record how many frames of a held segment are analysed (the task's progress)."""
        ...

    async def finish_segment(
        self,
        segment_id: int,
        worker_id: str,
        record: JsonObject | None,
        failure: tuple[str, str] | None,
        render: Render,
        now_ms: int,
        stages: StageTimes = NOT_MEASURED,
    ) -> SegmentRecorded | None:
        """Record a held segment's result (or its failure) with the time its stages
        took. A failure fails the task at once; the last segment done finishes it.
        Finishing the task stores the rendered result and the stage times summed over
        its segments, inserts its complete callback and refunds the reserved credits
        not used (all of them on failure), all in this transaction. None: not held."""
        ...

    async def release_segments(self, worker_id: str) -> int:
        """Graceful stop: the segments `worker_id` still holds go back to the queue now
        (not when their lease expires), their claim not counted as an attempt, and the
        task's progress drops their frames. Returns how many."""
        ...

    async def finish_video(
        self,
        task_id: int,
        worker_id: str,
        result: VideoResult,
        now_ms: int,
        stages: StageTimes = NOT_MEASURED,
    ) -> VideoFinished | None:
        """Finish a video task not split into segments (failed before, or no frame to
        analyse), if this worker still holds it (else None); refunds what it did not
        use."""
        ...
