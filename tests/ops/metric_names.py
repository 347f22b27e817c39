"""The series names a `Metrics` registry exposes, from its metric families."""

from __future__ import annotations

from facelens.adapters.metrics import Metrics
from facelens.application.telemetry import OpsStore

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "info": ("_info",),
    "gauge": ("",),
    "summary": ("", "_sum", "_count", "_created"),
}


async def exposed_series(metrics: Metrics, ops: OpsStore) -> set[str]:
    """Every series name `metrics` can expose, the queue gauges (read from `ops`)
    included."""
    if metrics.queue is None:
        metrics.watch_queue(ops)
    await metrics.exposition()  # refresh the queue gauges
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names
