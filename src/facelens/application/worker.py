"""The worker: claims queued tasks under a lease, analyses them, records the outcome.

Claiming, finishing and scheduling the complete callback are each one store
transaction, so a worker may die at any point: an unfinished task's lease expires and
another worker takes it; a finished task is never finished twice (the store checks the
worker still holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from facelens.application.pipeline import ImagePipeline, outcome_of
from facelens.application.ports import Clock, Store
from facelens.application.waiting import wait_first
from facelens.core.callbacks import complete_body, start_body
from facelens.core.domain import ClaimedTask, TaskOutcome
from facelens.core.errors import StoreUnavailable

log = logging.getLogger("facelens.worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    worker_id: str
    concurrency: int = 4
    """Tasks in flight at once (downloads overlap; inference is capped by the pipeline)."""
    lease_ms: int = 60_000
    poll_interval_s: float = 0.5
    refund_failed: bool = True
    stop_grace_s: float = 30.0
    max_backoff_s: float = 10.0


class Worker:
    def __init__(
        self,
        store: Store,
        pipeline: ImagePipeline,
        clock: Clock,
        config: WorkerConfig,
        on_finished: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._clock = clock
        self._config = config
        self._on_finished = on_finished
        self._wakeup = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}

    def wake(self) -> None:
        """New work may be there: claim now instead of at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        renewer = asyncio.create_task(self._renew_leases(stop), name="lease-renewer")
        backoff = self._config.poll_interval_s
        try:
            while not stop.is_set():
                try:
                    claimed = await self._claim()
                    backoff = self._config.poll_interval_s
                except StoreUnavailable as exc:
                    log.warning("worker %s: store unavailable (%s)", self._config.worker_id, exc)
                    await wait_first(backoff, stop)
                    backoff = min(backoff * 2, self._config.max_backoff_s)
                    continue
                if claimed == 0:
                    self._wakeup.clear()
                    await wait_first(self._config.poll_interval_s, stop, self._wakeup)
        finally:
            await self._drain()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _claim(self) -> int:
        free = self._config.concurrency - len(self._inflight)
        if free <= 0:
            await asyncio.wait(list(self._inflight.values()), return_when=asyncio.FIRST_COMPLETED)
            return 1
        tasks = await self._store.claim_tasks(
            self._config.worker_id, free, self._config.lease_ms, self._clock.now_ms(), start_body
        )
        if tasks:
            self._on_finished()  # start deliveries were written: wake the dispatcher
        for task in tasks:
            log.info("task %d: claimed (attempt %d)", task.id, task.attempts)
            job = asyncio.create_task(self._process(task), name=f"task-{task.id}")
            self._inflight[task.id] = job
            job.add_done_callback(self._forget)
        return len(tasks)

    def _forget(self, job: asyncio.Task[None]) -> None:
        for task_id, candidate in list(self._inflight.items()):
            if candidate is job:
                del self._inflight[task_id]

    async def _process(self, task: ClaimedTask) -> None:
        outcome = await self._analyse(task)
        body = complete_body(task, outcome)
        refund = self._config.refund_failed and not outcome.succeeded
        for delay in (0.5, 1.0, 2.0, 4.0, 8.0, 0.0):
            try:
                held = await self._store.finish_task(
                    task.id, self._config.worker_id, outcome, body, refund, self._clock.now_ms()
                )
                break
            except StoreUnavailable as exc:
                log.warning("task %d: cannot record outcome yet (%s)", task.id, exc)
                if delay == 0.0:
                    return  # the lease will expire and another worker redoes it
                await asyncio.sleep(delay)
        if not held:
            log.warning("task %d: lease lost before finishing; outcome dropped", task.id)
            return
        log.info(
            "task %d: %s (%d faces)%s",
            task.id,
            "succeeded" if outcome.succeeded else f"failed {outcome.error_code}",
            len(outcome.faces),
            " refunded" if refund else "",
        )
        self._on_finished()

    async def _analyse(self, task: ClaimedTask) -> TaskOutcome:
        return await outcome_of(
            lambda: self._pipeline.from_url(task.image_url, task.options),
            self._clock,
            f"task {task.id}",
        )

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        """Keep leases of in-flight tasks fresh so a slow task is never taken twice."""
        interval = self._config.lease_ms / 3000.0
        while True:
            await asyncio.sleep(interval)
            ids = list(self._inflight)
            if not ids:
                continue
            until = self._clock.now_ms() + self._config.lease_ms
            try:
                await self._store.renew_leases(self._config.worker_id, ids, until)
            except StoreUnavailable as exc:
                log.warning("worker %s: lease renewal failed (%s)", self._config.worker_id, exc)

    async def _drain(self) -> None:
        """Graceful stop: let in-flight tasks finish within the grace period, then
        give the rest back to the queue."""
        if not self._inflight:
            return
        jobs = list(self._inflight.values())
        _, pending = await asyncio.wait(jobs, timeout=self._config.stop_grace_s)
        if not pending:
            return
        ids = [tid for tid, job in self._inflight.items() if job in pending]
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(StoreUnavailable):
            released = await self._store.release_tasks(self._config.worker_id, ids)
            log.info("worker %s: released %d unfinished tasks", self._config.worker_id, released)
