"""What the use cases report about their work, and what they read for it.

The service, the worker and the dispatcher tell a `Telemetry` what happened (a
submission, a stage's duration, a callback's outcome); the Prometheus adapter
(`adapters/metrics.py`) turns that into metrics, and `NO_TELEMETRY` ignores it (unit
tests, one-shot CLI commands). The use cases never import the metrics library.

`OpsStore` is the store's operations side: the queue's size and age for the gauges,
and the workers' heartbeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Stage = Literal["queue_wait", "fetch", "decode", "detect", "total", "callback"]
STAGES: tuple[Stage, ...] = ("queue_wait", "fetch", "decode", "detect", "total", "callback")

CallbackOutcome = Literal["delivered", "retried", "failed"]
CreditKind = Literal["charged", "refunded"]


class Telemetry(Protocol):
    def tasks_submitted(self, count: int) -> None: ...

    def task_finished(self, succeeded: bool, error_code: str) -> None:
        """An outcome was recorded (error_code "" for a success)."""

    def stage(self, stage: Stage, seconds: float) -> None: ...

    def callback(self, process_status: int, outcome: CallbackOutcome, seconds: float) -> None:
        """One delivery attempt; `seconds` is the POST's duration."""

    def credits(self, kind: CreditKind, amount: int) -> None: ...

    def slots_busy(self, busy: int) -> None:
        """Worker analysis slots in use in this process right now."""


class NoTelemetry:
    def tasks_submitted(self, count: int) -> None:
        pass

    def task_finished(self, succeeded: bool, error_code: str) -> None:
        pass

    def stage(self, stage: Stage, seconds: float) -> None:
        pass

    def callback(self, process_status: int, outcome: CallbackOutcome, seconds: float) -> None:
        pass

    def credits(self, kind: CreditKind, amount: int) -> None:
        pass

    def slots_busy(self, busy: int) -> None:
        pass


NO_TELEMETRY: Telemetry = NoTelemetry()


@dataclass(frozen=True, slots=True)
class QueueStats:
    queued: int
    running: int
    callbacks_pending: int
    oldest_queued_at_ms: int | None
    """Creation time of the oldest queued task (None: nothing queued)."""


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    worker_id: str
    host: str
    pid: int
    started_at_ms: int
    last_seen_ms: int
    tasks_done: int


class OpsStore(Protocol):
    async def queue_stats(self) -> QueueStats: ...

    async def record_heartbeat(self, beat: WorkerBeat) -> None:
        """Insert or update this worker's row (one statement)."""

    async def live_workers(self, seen_since_ms: int) -> Sequence[WorkerBeat]:
        """Workers whose last heartbeat is at or after `seen_since_ms`, oldest first."""

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a worker's row (it stopped gracefully)."""
