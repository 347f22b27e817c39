"""The series names a `Metrics` registry exposes, from its metric families."""

from __future__ import annotations

from collections.abc import Sequence

from facelens.adapters.metrics import Metrics
from facelens.application.telemetry import QueueStats, WorkerBeat

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
    "summary": ("", "_sum", "_count", "_created"),
}


class FixedQueue:
    """An OpsStore that always reports the same queue (names only, no database)."""

    async def queue_stats(self) -> QueueStats:
        return QueueStats(queued=3, running=1, callbacks_pending=2, oldest_queued_at_ms=0)

    async def record_heartbeat(self, beat: WorkerBeat) -> None:
        pass

    async def live_workers(self, seen_since_ms: int) -> Sequence[WorkerBeat]:
        return []

    async def forget_worker(self, worker_id: str) -> None:
        pass


async def exposed_series(metrics: Metrics) -> set[str]:
    """Every series name `metrics` can expose, the queue gauges included."""
    if metrics.queue is None:
        metrics.watch_queue(FixedQueue())
    await metrics.exposition()  # refresh the queue gauges
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names
