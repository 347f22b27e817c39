"""The callback dispatcher: sends due deliveries from the outbox and records each try.

Only HTTP 200 confirms. Anything else is retried on the schedule (default 5 s, 30 s,
120 s, 300 s after the failed attempt), then the delivery is marked failed. The store
keeps a task's complete callback back until its start callback is settled, and a
delivery is held by one dispatcher at a time under a lease, so a 200 is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from facelens.application.logcontext import log_context
from facelens.application.ports import AttemptRecord, CallbackSender, Clock, Store
from facelens.application.telemetry import NO_TELEMETRY, Telemetry
from facelens.application.waiting import retry_unavailable, wait_first
from facelens.core.callbacks import webhook_id
from facelens.core.domain import DeliveryAttempt, DeliveryJob
from facelens.core.errors import StoreUnavailable
from facelens.core.redact import loggable_url
from facelens.core.retry import (
    DEFAULT_SCHEDULE_S,
    STORE_RETRY_DELAYS_S,
    Backoff,
    next_attempt_at,
)
from facelens.core.webhooks.signing import webhook_headers

log = logging.getLogger("facelens.dispatcher")


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    dispatcher_id: str
    schedule_s: Sequence[float] = DEFAULT_SCHEDULE_S
    concurrency: int = 16
    lease_ms: int = 60_000
    poll_interval_s: float = 0.5
    max_backoff_s: float = 10.0
    record_retry_delays_s: Sequence[float] = STORE_RETRY_DELAYS_S
    """Waits between the tries of recording an attempt while the database is down."""


class Dispatcher:
    def __init__(
        self,
        store: Store,
        sender: CallbackSender,
        clock: Clock,
        config: DispatcherConfig,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._telemetry = telemetry
        self._store = store
        self._sender = sender
        self._clock = clock
        self._config = config
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self._config.poll_interval_s, self._config.max_backoff_s)
        while not stop.is_set():
            try:
                self._wakeup.clear()
                jobs = await self._claim()
                backoff.succeeded()
            except StoreUnavailable as exc:
                log.warning("dispatcher: store unavailable (%s)", exc)
                await wait_first(backoff.failed(), stop)
                continue
            if jobs:
                # Finish what was claimed even when asked to stop: sends are bounded by
                # the callback timeout, and an unrecorded 200 would be sent twice.
                await self._round(jobs)
                continue
            await wait_first(self._config.poll_interval_s, stop, self._wakeup)
        await self._flush()

    async def _flush(self) -> None:
        """Once stopped: claim and send what is due now, one round (the complete
        callbacks of tasks a draining worker has just finished). Best effort: a failed
        send or a busy outbox waits for the next dispatcher, as any delivery does."""
        try:
            jobs = await self._claim()
        except StoreUnavailable:
            return
        await self._round(jobs)

    async def _round(self, jobs: Sequence[DeliveryJob]) -> None:
        """Send the claimed callbacks at once, then record every attempt in ONE store
        transaction (the next claim waits for the round anyway: a task's complete
        callback is due only once its start callback is recorded)."""
        records = await asyncio.gather(*(self._deliver(job) for job in jobs))
        what = f"{len(records)} callback attempts (tasks {', '.join(str(j.task_id) for j in jobs)})"
        try:
            await retry_unavailable(
                lambda: self._store.record_delivery_attempts(self._config.dispatcher_id, records),
                log,
                what,
                self._config.record_retry_delays_s,
            )
        except StoreUnavailable as exc:
            # The lease on each delivery expires and a dispatcher sends it again: the
            # receiver sees this attempt twice (same webhook-id), the history once.
            for job in jobs:
                with log_context(task_id=job.task_id, account_id=job.account_id):
                    log.error(
                        "%s (delivery %d): not recorded, database unreachable; it will be "
                        "sent again once its lease expires (%s)",
                        _attempt_name(job),
                        job.id,
                        exc,
                    )

    async def _claim(self) -> list[DeliveryJob]:
        return await self._store.claim_deliveries(
            self._config.dispatcher_id,
            self._config.concurrency,
            self._config.lease_ms,
            self._clock.now_ms(),
        )

    async def _deliver(self, job: DeliveryJob) -> AttemptRecord:
        with log_context(task_id=job.task_id, account_id=job.account_id):
            return await self._send(job)

    async def _send(self, job: DeliveryJob) -> AttemptRecord:
        body = job.body.encode("utf-8")
        msg_id = webhook_id(job.task_id, job.process_status)
        headers = webhook_headers(job.webhook_secret, msg_id, self._clock.now_ms() // 1000, body)
        started = time.perf_counter()
        response = await self._sender.post(job.callback_url, body, headers)
        duration_ms = int((time.perf_counter() - started) * 1000)
        now = self._clock.now_ms()
        delivered = response.http_status == 200
        attempts = job.attempts + 1
        retry_at = None if delivered else next_attempt_at(attempts, now, self._config.schedule_s)
        attempt = DeliveryAttempt(
            attempted_at_ms=now,
            http_status=response.http_status,
            error=response.error,
            duration_ms=duration_ms,
        )
        self._telemetry.callback(
            int(job.process_status),
            "delivered" if delivered else ("failed" if retry_at is None else "retried"),
            duration_ms / 1000,
        )
        what = _attempt_name(job)
        log.info(
            "%s to %s -> %s%s",
            what,
            loggable_url(job.callback_url),
            response.http_status if response.http_status is not None else response.error,
            "" if delivered else (" (gave up)" if retry_at is None else " (will retry)"),
        )
        return AttemptRecord(job.id, attempt, delivered, retry_at)


def _attempt_name(job: DeliveryJob) -> str:
    return f"task {job.task_id}: callback {int(job.process_status)} attempt {job.attempts + 1}"
