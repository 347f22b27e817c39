"""The worker: claims queued tasks under a lease, analyses them, records the outcome.

Claiming, finishing and scheduling the complete callback are each one store
transaction, so a worker may die at any point: an unfinished task's lease expires and
another worker takes it; a finished task is never finished twice (the store checks the
worker still holds it).

Both ends are batched where it matters. A claim and a commit cost a few round trips
each; when analyses are slow (a download, an inference: tens of milliseconds or more)
that is noise, but when they are fast it was most of a task's cost and held the queue
to a few hundred tasks/s:

* claims: the worker claims once at least half of its slots are free, so a claim
  takes several tasks. While tasks are fast (their average analysis time is below
  `prefetch_below_s`), it also claims ahead, up to twice its concurrency, into a small
  local buffer from which a freed slot starts the next task at once. Buffered tasks
  are held like running ones (leases renewed, start callback scheduled), and a task
  waits there about one fast analysis at most. Slow tasks are never buffered, so a
  task is not kept from an idle worker elsewhere;
* finishes: outcomes go to a `Finisher`, which records several in one transaction.
  A slot is free again as soon as its analysis ends; the task stays *held* (its lease
  renewed) until its outcome is recorded.

A worker holds at most twice its concurrency and claims nothing while that many
outcomes wait to be recorded, so a slow database cannot make it hoard tasks.

An idle worker waits for `wake()` (a submission in this process, or a PostgreSQL
NOTIFY from any process, see `adapters/store/pg_notify.py`) or its poll interval.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from facelens.application.finisher import Finisher, Recorded
from facelens.application.logcontext import log_context
from facelens.application.pipeline import ImagePipeline, outcome_of
from facelens.application.ports import Clock, Store, TaskFinish
from facelens.application.stage_timer import StageTimer
from facelens.application.task_telemetry import TaskTelemetry
from facelens.application.telemetry import NO_TELEMETRY, Telemetry
from facelens.application.video_tasks import VideoTasks
from facelens.application.waiting import wait_first
from facelens.core.callbacks import complete_body, start_body
from facelens.core.domain import ClaimedTask, TaskOutcome
from facelens.core.errors import StoreUnavailable
from facelens.core.redact import loggable_url
from facelens.core.retry import Backoff

log = logging.getLogger("facelens.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    worker_id: str
    concurrency: int = 4
    """Tasks analysed at once (downloads overlap; inference is capped by the pipeline)."""
    lease_ms: int = 60_000
    poll_interval_s: float = 0.5
    refund_failed: bool = True
    stop_grace_s: float = 30.0
    max_backoff_s: float = 10.0
    finish_wait_s: float = 0.005
    """How long a finished task may wait for others to share its commit."""
    prefetch_below_s: float = 0.05
    """Claim ahead into the buffer only while the average analysis is faster than this."""


class Worker:
    def __init__(
        self,
        store: Store,
        pipeline: ImagePipeline,
        clock: Clock,
        config: WorkerConfig,
        on_finished: Callable[[], None] = lambda: None,
        video: VideoTasks | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._video = video
        """Runs video tasks (they record their own outcome: application/video_tasks.py)."""
        self._store = store
        self.reports = TaskTelemetry(telemetry)
        """Metrics of this worker's tasks; `reports.tasks_done` feeds the heartbeat."""
        self._pipeline = pipeline
        self._clock = clock
        self._config = config
        self._on_finished = on_finished
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        """Tasks being analysed."""
        self._buffer: collections.deque[ClaimedTask] = collections.deque()
        """Claimed tasks waiting for a free slot."""
        self._held: set[int] = set()
        """Tasks claimed and not yet recorded: buffered, analysed or waiting for the
        finisher. Their leases are renewed."""
        self._stopping = False
        self._analysis_s: float | None = None
        """Moving average of analysis times (None until one finished)."""
        self._finisher = Finisher(
            store,
            clock,
            config.worker_id,
            self._recorded,
            max_batch=2 * config.concurrency,
            max_wait_s=config.finish_wait_s,
        )

    def wake(self) -> None:
        """New work may be there: claim now instead of at the next poll."""
        self._wakeup.set()

    @property
    def held(self) -> frozenset[int]:
        """Ids of the tasks this worker holds (claimed, outcome not yet recorded)."""
        return frozenset(self._held)

    async def run(self, stop: asyncio.Event) -> None:
        renewer = asyncio.create_task(self._renew_leases(), name="lease-renewer")
        finisher = asyncio.create_task(self._finisher.run(), name="finisher")
        backoff = Backoff(self._config.poll_interval_s, self._config.max_backoff_s)
        try:
            while not stop.is_set():
                wanted = self._wanted()
                if wanted == 0:
                    self._room.clear()
                    await wait_first(self._config.poll_interval_s, stop, self._room)
                    continue
                self._wakeup.clear()  # before the claim: a wake-up during it is kept
                try:
                    claimed = await self._claim(wanted)
                    backoff.succeeded()
                except StoreUnavailable as exc:
                    log.warning("worker %s: store unavailable (%s)", self._config.worker_id, exc)
                    await wait_first(backoff.failed(), stop)
                    continue
                if claimed < wanted:  # the queue is empty for now
                    await wait_first(self._config.poll_interval_s, stop, self._wakeup)
        finally:
            await self._drain(finisher)
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    def _wanted(self) -> int:
        """How many tasks to claim now (0: wait). Free slots once half of them are free;
        with fast tasks, enough to hold twice the concurrency (see the module doc)."""
        concurrency = self._config.concurrency
        room = 2 * concurrency - len(self._held)
        if self._fast():
            return room if len(self._held) <= concurrency else 0
        wanted = min(concurrency - len(self._inflight) - len(self._buffer), room)
        return wanted if wanted >= (concurrency + 1) // 2 else 0

    def _fast(self) -> bool:
        average = self._analysis_s
        return average is not None and average < self._config.prefetch_below_s

    async def _claim(self, limit: int) -> int:
        tasks = await self._store.claim_tasks(
            self._config.worker_id, limit, self._config.lease_ms, self._clock.now_ms(), start_body
        )
        if tasks:
            self._on_finished()  # start deliveries were written: wake the dispatcher
        self.reports.claimed(tasks)
        for task in tasks:
            with log_context(task_id=task.id, account_id=task.account_id):
                log.info(
                    "task %d: claimed (attempt %d) %s",
                    task.id,
                    task.attempts,
                    loggable_url(task.image_url),  # a signed URL's token stays out of logs
                )
            self._held.add(task.id)
            self._buffer.append(task)
        self._start_buffered()
        return len(tasks)

    def _start_buffered(self) -> None:
        """Fill the free analysis slots from the buffer, oldest first."""
        while self._buffer and not self._stopping:
            if len(self._inflight) >= self._config.concurrency:
                return
            task = self._buffer.popleft()
            job = asyncio.create_task(self._process(task), name=f"task-{task.id}")
            self._inflight[task.id] = job
            job.add_done_callback(self._forget)
            self.reports.busy(len(self._inflight))

    def _forget(self, job: asyncio.Task[None]) -> None:
        for task_id, candidate in list(self._inflight.items()):
            if candidate is job:
                del self._inflight[task_id]
        self.reports.busy(len(self._inflight))
        self._start_buffered()
        self._room.set()

    async def _process(self, task: ClaimedTask) -> None:
        if task.video is not None and self._video is not None:
            try:
                with log_context(task_id=task.id, account_id=task.account_id):
                    await self._video.run_task(task, task.video)
            finally:
                self.reports.released((task.id,))  # it records its own outcome
                self._held.discard(task.id)
                self._room.set()
                self._on_finished()  # its callbacks may be due: wake the dispatcher
            return
        with log_context(task_id=task.id, account_id=task.account_id):
            await self._process_in_context(task)

    async def _process_in_context(self, task: ClaimedTask) -> None:
        started = time.monotonic()
        timer = StageTimer(self.reports.telemetry)
        outcome = dataclasses.replace(await self._analyse(task, timer), stages=timer.times())
        took = time.monotonic() - started
        average = self._analysis_s
        self._analysis_s = took if average is None else 0.8 * average + 0.2 * took
        refund = self._config.refund_failed and not outcome.succeeded
        body = complete_body(task, outcome)
        finish = TaskFinish(task.id, outcome, body, refund, account_id=task.account_id)
        # Nothing else in flight or buffered: no outcome will join this batch soon.
        self._finisher.add(finish, flush_now=len(self._inflight) <= 1 and not self._buffer)

    def _recorded(self, results: Sequence[Recorded]) -> None:
        """The finisher's report on one batch: the tasks are no longer held."""
        for result in results:
            finish = result.finish
            self._held.discard(finish.task_id)
            self.reports.recorded(finish, result.held)
            with log_context(task_id=finish.task_id, account_id=finish.account_id):
                _log_recorded(result)
        self._room.set()
        if any(result.held for result in results):
            self._on_finished()  # complete deliveries were written: wake the dispatcher

    async def _analyse(self, task: ClaimedTask, timer: StageTimer) -> TaskOutcome:
        return await outcome_of(
            lambda: self._pipeline.from_url(task.image_url, task.options, timer),
            self._clock,
            f"task {task.id}",
        )

    async def _renew_leases(self) -> None:
        """Keep leases of held tasks fresh so a slow task is never taken twice."""
        interval = self._config.lease_ms / 3000.0
        while True:
            await asyncio.sleep(interval)
            ids = sorted(self._held)
            if not ids:
                continue
            until = self._clock.now_ms() + self._config.lease_ms
            try:
                await self._store.renew_leases(self._config.worker_id, ids, until)
            except StoreUnavailable as exc:
                log.warning("worker %s: lease renewal failed (%s)", self._config.worker_id, exc)

    async def _drain(self, finisher: asyncio.Task[None]) -> None:
        """Graceful stop: claim nothing more; let held tasks (in flight, then buffered)
        finish within the grace period and record their outcomes; give the rest back."""
        deadline = time.monotonic() + self._config.stop_grace_s
        while self._inflight and (left := deadline - time.monotonic()) > 0:
            jobs = list(self._inflight.values())
            await asyncio.wait(jobs, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        self._stopping = True  # the buffer starts nothing more
        self._buffer.clear()  # still held: released below with the cut ones
        pending = list(self._inflight.values())
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._finisher.close()
        await finisher
        unfinished = sorted(self._held)  # buffered or cut (recorded ones are gone)
        if not unfinished:
            return
        with contextlib.suppress(StoreUnavailable):
            released = await self._store.release_tasks(self._config.worker_id, unfinished)
            self._held.difference_update(unfinished)
            self.reports.released(unfinished)
            log.info("worker %s: released %d unfinished tasks", self._config.worker_id, released)


def _log_recorded(result: Recorded) -> None:
    finish = result.finish
    outcome = finish.outcome
    if result.held is None:
        log.warning(
            "task %d: outcome not recorded (database unreachable); its lease will "
            "expire and another worker redoes it",
            finish.task_id,
        )
    elif not result.held:
        log.warning("task %d: lease lost before finishing; outcome dropped", finish.task_id)
    else:
        log.info(
            "task %d: %s (%d faces)%s",
            finish.task_id,
            "succeeded" if outcome.succeeded else f"failed {outcome.error_code}",
            len(outcome.faces),
            " refunded" if finish.refund else "",
        )
