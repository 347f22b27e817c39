"""Video tasks: download, probe, split into segments, analyse, finish once.

A claimed video task is handled by `run_task` (the worker calls it instead of the image
pipeline): the video is downloaded to a temporary file and probed in the sandboxed
decoder; the chosen frames' times are split into segments of `segment_ms`
(`core.video.plan_segments`); the store records the segments in one transaction, the
first one held by this worker, and the task itself no longer has a lease: from then on
its segments carry it. This worker goes on with the first segment with the file and
the decoder it already has (a short video is one segment: no second download); the
other segments are claimed by `run_segments` loops in any worker process with a free
analysis slot (application/analysis_slots.py), each one downloading the video and
seeking to its segment's start.

Each segment is tracked on its own; its faces with segment-local track ids are stored
with it. Whoever records the last segment also finishes the task in the same
transaction: tracks are stitched across the borders, the complete callback inserted
(once: the task is finished only while running, and deliveries are unique per task
and status) and the credits not used refunded. A killed worker's segment is claimed
again when its lease expires and redone from its start; a segment whose attempts run
out fails the task (VIDEO_DECODE_FAILED), as does any segment's failure.

Each run times its stages (fetch = the download, decode = waiting on the decoding
child: probe, seeks and frames, detect = detection summed over the frames); the store
keeps them with the segment and sums them when it finishes the task. Whoever finishes
the task reports it to `Telemetry` once: the outcome, each stage's total, the refund.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from facelens.application.analysis_slots import AnalysisSlots
from facelens.application.ports import Clock
from facelens.application.stage_timer import StageTimer
from facelens.application.task_telemetry import video_finished
from facelens.application.telemetry import NO_TELEMETRY, Telemetry
from facelens.application.video_ports import (
    ClaimedSegment,
    SegmentRecorded,
    VideoDecoderPort,
    VideoDownloadsPort,
    VideoFinished,
    VideoStore,
)
from facelens.application.waiting import wait_first
from facelens.core.detection.quality import face_quality
from facelens.core.domain import ClaimedTask, DecodedImage, DetectOptions, Face, JsonObject
from facelens.core.errors import StoreUnavailable, TaskFailure
from facelens.core.tracking import Tracker, face_box
from facelens.core.video import Sampling, VideoFrame, VideoInfo, plan_segments
from facelens.core.video_result import (
    AnalysedFrame,
    VideoResult,
    segment_record,
    video_failure,
    video_result_of,
    video_success,
)

log = logging.getLogger("facelens.video")

Detect = Callable[[DecodedImage, DetectOptions], Awaitable[list[Face]]]


@dataclass(frozen=True, slots=True)
class VideoConfig:
    worker_id: str
    segment_ms: int = 60_000
    lease_ms: int = 60_000
    poll_interval_s: float = 0.5
    max_segment_attempts: int = 3
    progress_every_s: float = 1.0
    stop_grace_s: float = 30.0
    max_analyses: int = 1
    """Video analyses this process runs at once (application/analysis_slots.py)."""


class VideoTasks:
    def __init__(
        self,
        store: VideoStore,
        downloads: VideoDownloadsPort,
        decoder: VideoDecoderPort,
        detect: Detect,
        clock: Clock,
        config: VideoConfig,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._telemetry = telemetry
        self._store = store
        self._downloads = downloads
        self._decoder = decoder
        self._detect = detect
        self._clock = clock
        self._config = config
        self._wakeup = asyncio.Event()
        self._slots = AnalysisSlots(config.max_analyses)

    def wake(self) -> None:
        """Segments may be waiting: look now instead of at the next poll."""
        self._wakeup.set()

    # the task

    async def run_task(self, task: ClaimedTask, sampling: Sampling) -> None:
        """Analyse a claimed video task (the worker holds it until this returns)."""
        with self._slots.taken():
            await self._run_task(task, sampling)

    async def _run_task(self, task: ClaimedTask, sampling: Sampling) -> None:
        first: int | None = None
        timer = StageTimer()  # adds up only: the task's totals are reported when it ends
        try:
            async with contextlib.AsyncExitStack() as files:
                with timer.measure("fetch"):
                    path = await files.enter_async_context(self._downloads.download(task.image_url))
                with timer.measure("decode"):
                    session = await self._decoder.open(str(path), sampling)
                try:
                    plan = session.plan
                    assert plan is not None
                    segments = plan_segments(plan.timestamps_ms, self._config.segment_ms)
                    if not segments:  # nothing at or after start_ms: a success, free
                        result = video_success(
                            task, plan.info, [], sampling.interval_ms, self._now()
                        )
                        self._report(
                            await self._store.finish_video(
                                task.id, self._worker, result, self._now(), timer.times()
                            )
                        )
                        return
                    first = await self._store.plan_video(
                        task.id,
                        self._worker,
                        plan.info.stored(),
                        segments,
                        self._config.lease_ms,
                        self._now(),
                    )
                    if first is None:
                        log.warning("task %d: lost before its segments were planned", task.id)
                        return
                    if len(segments) > 1:
                        self.wake()
                    log.info(
                        "task %d: %d frames in %d segments",
                        task.id,
                        len(plan.timestamps_ms),
                        len(segments),
                    )
                    async with self._renewing(first):
                        record = await self._analyse(
                            first,
                            session.frames(),
                            task.options,
                            sampling,
                            segments[0].end_ms,
                            timer,
                        )
                finally:
                    await session.close()
            await self._finish_segment(first, task, sampling, record, None, timer)
        except TaskFailure as failure:
            await self._fail(task, sampling, first, failure.error_code, failure.message, timer)
        except (asyncio.CancelledError, StoreUnavailable):
            raise  # the lease expires and the task or segment is redone
        except Exception:
            log.exception("task %d: unexpected error in the video flow", task.id)
            text = "internal error while analysing the video"
            await self._fail(task, sampling, first, "INTERNAL_ERROR", text, timer)

    async def _fail(
        self,
        task: ClaimedTask,
        sampling: Sampling,
        first: int | None,
        code: str,
        text: str,
        timer: StageTimer,
    ) -> None:
        log.info("task %d: video failed %s", task.id, code)
        if first is not None:
            await self._finish_segment(first, task, sampling, None, (code, text), timer)
        else:
            result = video_failure(task, code, text, None, self._now())
            self._report(
                await self._store.finish_video(
                    task.id, self._worker, result, self._now(), timer.times()
                )
            )

    # segments claimed from the queue

    async def run_segments(self, stop: asyncio.Event) -> None:
        """Claim and analyse segments (of any worker's tasks) until `stop`, one at a
        time and only while this process has a free analysis slot: a busy process
        leaves the other segments to idle ones."""
        while not stop.is_set():
            if not self._slots.free:
                self._slots.freed.clear()
                await wait_first(self._config.poll_interval_s, stop, self._slots.freed)
                continue
            self._wakeup.clear()
            with self._slots.taken():
                try:
                    segment = await self._store.claim_segment(
                        self._worker, self._config.lease_ms, self._now()
                    )
                except StoreUnavailable as exc:
                    log.warning("segments: store unavailable (%s)", exc)
                    segment = None
                if segment is not None:
                    await self._until_stopped(self._run_segment(segment), stop)
            if segment is None:
                await wait_first(self._config.poll_interval_s, stop, self._wakeup)

    async def release_held(self) -> None:
        """Call once this process's segment work has ended (graceful stop): segments
        the grace period cut go back to the queue at once for another worker."""
        try:
            released = await self._store.release_segments(self._worker)
        except StoreUnavailable as exc:
            log.warning("segments not released (%s); their leases will expire", exc)
            return
        if released:
            log.info("worker %s: released %d unfinished segments", self._worker, released)

    async def _until_stopped(self, work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
        """Run `work`; once `stop` is set, give it `stop_grace_s` more, then cut it (its
        segment's lease expires and another worker redoes it)."""
        job = asyncio.create_task(work)
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({job, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not job.done():
                done, _ = await asyncio.wait({job}, timeout=self._config.stop_grace_s)
                if not done:
                    log.info("segment cut at shutdown; its lease will expire")
                    job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        finally:
            stopping.cancel()
            if not job.done():
                job.cancel()

    async def _run_segment(self, segment: ClaimedSegment) -> None:
        task, sampling = segment.task, segment.sampling
        log.info("task %d: segment %d claimed (attempt %d)", task.id, segment.seq, segment.attempts)
        if segment.attempts > self._config.max_segment_attempts:
            failure = (
                "VIDEO_DECODE_FAILED",
                f"a segment of the video failed {segment.attempts - 1} times",
            )
            await self._finish_segment(segment.id, task, sampling, None, failure, StageTimer())
            return
        if segment.attempts > 1:
            # Taken over: the claim reset this segment's frames_done, but the task's sum
            # still counts the previous holder's frames. The claim cannot re-sum it (it
            # holds the segment's lock; every transaction locks the task first), so the
            # next transaction does, before any frame is decoded.
            with contextlib.suppress(StoreUnavailable):
                await self._store.segment_progress(segment.id, self._worker, 0)
        timer = StageTimer()
        try:
            async with self._renewing(segment.id), contextlib.AsyncExitStack() as files:
                with timer.measure("fetch"):
                    path = await files.enter_async_context(self._downloads.download(task.image_url))
                with timer.measure("decode"):
                    session = await self._decoder.open(
                        str(path), sampling, segment.start_ms, segment.end_ms
                    )
                try:
                    record = await self._analyse(
                        segment.id, session.frames(), task.options, sampling, None, timer
                    )
                finally:
                    await session.close()
        except TaskFailure as failure:
            await self._finish_segment(
                segment.id, task, sampling, None, (failure.error_code, failure.message), timer
            )
            return
        except (asyncio.CancelledError, StoreUnavailable):
            raise
        except Exception:
            log.exception("task %d: unexpected error in segment %d", task.id, segment.seq)
            failure_text = ("INTERNAL_ERROR", "internal error while analysing the video")
            await self._finish_segment(segment.id, task, sampling, None, failure_text, timer)
            return
        await self._finish_segment(segment.id, task, sampling, record, None, timer)

    # shared steps

    async def _analyse(
        self,
        segment_id: int,
        frames: AsyncIterator[VideoFrame],
        options: DetectOptions,
        sampling: Sampling,
        stop_at_ms: int | None,
        timer: StageTimer,
    ) -> JsonObject:
        """Detect and track the faces of the frames (until `stop_at_ms`, exclusive);
        `timer` adds the wait for each frame to decode and each detection to detect."""
        tracker = Tracker(sampling.interval_ms)
        analysed: list[AnalysedFrame] = []
        width = height = 0
        reported = time.monotonic()
        pending = aiter(frames)
        while True:
            with timer.measure("decode"):
                frame = await anext(pending, None)
            if frame is None:
                break
            if stop_at_ms is not None and frame.timestamp_ms >= stop_at_ms:
                break
            height, width = frame.pixels.shape[:2]
            image = DecodedImage(pixels=frame.pixels, width=width, height=height, format="video")
            with timer.measure("detect"):
                faces = await self._detect(image, options)
            ids = tracker.update(frame.timestamp_ms, faces)
            sharpness = tuple(face_quality(frame.pixels, face_box(f)).blur for f in faces)
            analysed.append(
                AnalysedFrame(frame.index, frame.timestamp_ms, tuple(faces), tuple(ids), sharpness)
            )
            if time.monotonic() - reported >= self._config.progress_every_s:
                reported = time.monotonic()
                with contextlib.suppress(StoreUnavailable):
                    await self._store.segment_progress(segment_id, self._worker, len(analysed))
        return segment_record(analysed, width, height)

    async def _finish_segment(
        self,
        segment_id: int,
        task: ClaimedTask,
        sampling: Sampling,
        record: JsonObject | None,
        failure: tuple[str, str] | None,
        timer: StageTimer,
    ) -> None:
        now = self._now()

        def rendered(
            held_task: ClaimedTask,
            info: VideoInfo | None,
            records: Sequence[JsonObject],
            fail: tuple[str, str] | None,
        ) -> VideoResult:
            return video_result_of(held_task, info, records, fail, sampling.interval_ms, now)

        held: SegmentRecorded | None = await self._store.finish_segment(
            segment_id, self._worker, record, failure, rendered, now, timer.times()
        )
        if held is None:
            log.warning("task %d: segment %d lost before it was recorded", task.id, segment_id)
        else:
            self._report(held.finished)

    def _report(self, finished: VideoFinished | None) -> None:
        if finished is not None:
            video_finished(self._telemetry, finished)

    @contextlib.asynccontextmanager
    async def _renewing(self, segment_id: int) -> AsyncIterator[None]:
        """Keep a held segment's lease fresh while it is analysed."""

        async def renew() -> None:
            interval = self._config.lease_ms / 3000.0
            while True:
                await asyncio.sleep(interval)
                until = self._now() + self._config.lease_ms
                with contextlib.suppress(StoreUnavailable):
                    await self._store.renew_segment(segment_id, self._worker, until)

        renewer = asyncio.create_task(renew(), name=f"segment-{segment_id}-lease")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    @property
    def _worker(self) -> str:
        return self._config.worker_id

    def _now(self) -> int:
        return self._clock.now_ms()
