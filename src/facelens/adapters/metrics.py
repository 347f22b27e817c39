"""Prometheus metrics of one facelens process (the `Telemetry` port's adapter).

Every process (a `serve`, a `facelens worker`) owns one `Metrics` with its own
`CollectorRegistry`, built by the process's wiring, never at import: two apps in one
test process never share counters, and nothing is registered twice.

Counters and histograms are counted where the work happens (see `Telemetry`). The
queue gauges are different: they describe the shared database, not the process, so
they are read from the store when scraped, at most once a second per process however
many scrapers there are (`QueueGauges`), and each process reports the same numbers:
aggregate them with max(), never sum().

The metric names are a public interface (dashboards, alerts and outside checks read
them): change none without changing `deploy/`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from facelens.application.telemetry import (
    STAGES,
    CallbackOutcome,
    CreditKind,
    OpsStore,
    QueueStats,
    Stage,
)
from facelens.core.errors import StoreUnavailable

log = logging.getLogger("facelens.metrics")

STAGE_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Seconds: from a 5 ms decode to an hour in the queue behind a backlog."""

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format, which every Prometheus version reads (what
`generate_latest` writes for these names)."""

QUEUE_STATES = ("queued", "running", "callbacks_pending")
CALLBACK_OUTCOMES: tuple[CallbackOutcome, ...] = ("delivered", "retried", "failed")
CREDIT_KINDS: tuple[CreditKind, ...] = ("charged", "refunded")

DEFAULT_LIVE_WINDOW_S = 30.0
"""A worker counts as live when its last heartbeat is this recent."""


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What this process runs, for `facelens_model_info` and `facelens_build_info`."""

    version: str
    role: str
    """serve, api (serve --no-worker) or worker."""
    model: str = ""
    backend: str = ""
    mode: str = ""


class QueueGauges(Collector):
    """`facelens_queue_depth{state}`, `facelens_oldest_queued_seconds`,
    `facelens_workers_live` and `facelens_store_up`, from a cached store read.

    `refresh()` (async, on the event loop that owns the store) reads the store when the
    cache is older than `max_age_s`, or than `READ_SHARE` times the last read's
    duration if that is longer: a read costs ~10 ms on a million tasks but ~300 ms when
    all of them are queued (bench/queue_stats.py), and the gauges must never take more
    than a small share of the database. `collect()` (sync, called by the exposition,
    possibly in another thread) only reads the cache. A failed read drops the queue
    gauges (absent, not stale) and sets `facelens_store_up` to 0.
    """

    READ_SHARE = 20
    """The cache lives at least 20 read durations: reads take at most 5 % of a
    connection's time, whatever the queue's size."""

    def __init__(
        self,
        ops: OpsStore,
        *,
        max_age_s: float = 1.0,
        live_window_s: float = DEFAULT_LIVE_WINDOW_S,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._ops = ops
        self._max_age_s = max_age_s
        self._live_window_ms = int(live_window_s * 1000)
        self._monotonic = monotonic
        self._wall_ms = wall_ms
        self._lock: asyncio.Lock | None = None
        self._read_at: float | None = None
        self._fresh_for_s = max_age_s
        self._snapshot: tuple[QueueStats, int, int] | None = None
        """(stats, live workers, wall ms of the read); None when the last read failed."""
        self.reads = 0
        """Store reads so far (tests check the once-a-second cap)."""

    async def refresh(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # concurrent scrapes share one read
            now = self._monotonic()
            if self._read_at is not None and now - self._read_at < self._fresh_for_s:
                return
            self._read_at = now
            self.reads += 1
            try:
                stats = await self._ops.queue_stats()
                read_ms = self._wall_ms()
                live = await self._ops.live_workers(read_ms - self._live_window_ms)
            except StoreUnavailable as exc:
                log.warning("queue gauges: store unavailable (%s)", exc)
                self._snapshot = None
                return
            finally:
                took = self._monotonic() - now
                self._fresh_for_s = max(self._max_age_s, self.READ_SHARE * took)
            self._snapshot = (stats, len(live), read_ms)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._snapshot
        yield GaugeMetricFamily(
            "facelens_store_up",
            "1 when the last queue read from the database succeeded.",
            value=0 if snapshot is None else 1,
        )
        if snapshot is None:
            return
        stats, live, read_ms = snapshot
        depth = GaugeMetricFamily(
            "facelens_queue_depth",
            "Tasks queued or running, and callbacks waiting to be delivered (whole database).",
            labels=["state"],
        )
        depth.add_metric(["queued"], stats.queued)
        depth.add_metric(["running"], stats.running)
        depth.add_metric(["callbacks_pending"], stats.callbacks_pending)
        yield depth
        oldest = stats.oldest_queued_at_ms
        yield GaugeMetricFamily(
            "facelens_oldest_queued_seconds",
            "Age of the oldest queued task (0 when nothing is queued).",
            value=0.0 if oldest is None else max(0.0, (read_ms - oldest) / 1000),
        )
        yield GaugeMetricFamily(
            "facelens_workers_live",
            "Workers whose last heartbeat is recent (whole database).",
            value=live,
        )


class Metrics:
    """This process's registry and every facelens metric in it; a `Telemetry`."""

    def __init__(self, info: ProcessInfo, *, worker_slots: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.http_requests = Counter(
            "facelens_http_requests_total",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "facelens_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.submitted = Counter(
            "facelens_tasks_submitted_total", "Tasks accepted (and charged).", registry=registry
        )
        self.finished = Counter(
            "facelens_tasks_finished_total",
            "Task outcomes recorded, by result (succeeded, failed) and error code.",
            ["result", "error_code"],
            registry=registry,
        )
        self.stages = Histogram(
            "facelens_stage_duration_seconds",
            "Time a task spent in each stage: queue_wait, fetch, decode, detect, total "
            "(submit to outcome) and callback (one delivery attempt).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.callbacks = Counter(
            "facelens_callbacks_total",
            "Callback delivery attempts by process status (1 start, 2 complete) and "
            "outcome (delivered, retried, failed = gave up).",
            ["process_status", "outcome"],
            registry=registry,
        )
        self.credits_counter = Counter(
            "facelens_credits_total",
            "Credits charged for tasks and refunded for failed ones.",
            ["kind"],
            registry=registry,
        )
        self.busy = Gauge(
            "facelens_worker_busy_slots",
            "Worker analysis slots in use in this process.",
            registry=registry,
        )
        self.slots = Gauge(
            "facelens_worker_slots",
            "Worker analysis slots of this process (its concurrency; 0 without a worker).",
            registry=registry,
        )
        self.slots.set(worker_slots)
        Info("facelens_build", "facelens version and process role.", registry=registry).info(
            {"version": info.version, "role": info.role}
        )
        self._model = Info("facelens_model", "The detector this process runs.", registry=registry)
        self.describe_model(info.model, info.backend, info.mode)
        ProcessCollector(registry=registry)  # process_cpu_seconds_total, memory, fds
        self._zero_series()
        self.queue: QueueGauges | None = None

    def _zero_series(self) -> None:
        """Create the known label sets at 0, so rate() and alerts see a series from
        the first scrape instead of "no data" until the first event."""
        for stage in STAGES:
            self.stages.labels(stage=stage)
        for status in ("1", "2"):
            for outcome in CALLBACK_OUTCOMES:
                self.callbacks.labels(process_status=status, outcome=outcome)
        for kind in CREDIT_KINDS:
            self.credits_counter.labels(kind=kind)
        self.finished.labels(result="succeeded", error_code="")

    def describe_model(self, model: str, backend: str, mode: str) -> None:
        """`facelens_model_info{model, backend, mode}` (known once the detector is built)."""
        self._model.info({"model": model, "backend": backend, "mode": mode})

    def watch_queue(
        self,
        ops: OpsStore,
        *,
        max_age_s: float = 1.0,
        live_window_s: float = DEFAULT_LIVE_WINDOW_S,
    ) -> QueueGauges:
        """Add the queue gauges, read from `ops` (see `QueueGauges`)."""
        gauges = QueueGauges(ops, max_age_s=max_age_s, live_window_s=live_window_s)
        self.registry.register(gauges)
        self.queue = gauges
        return gauges

    async def exposition(self) -> bytes:
        """The text format of every metric, queue gauges refreshed if stale."""
        if self.queue is not None:
            await self.queue.refresh()
        return bytes(generate_latest(self.registry))

    # Telemetry

    def tasks_submitted(self, count: int) -> None:
        self.submitted.inc(count)

    def task_finished(self, succeeded: bool, error_code: str) -> None:
        result = "succeeded" if succeeded else "failed"
        self.finished.labels(result=result, error_code=error_code).inc()

    def stage(self, stage: Stage, seconds: float) -> None:
        self.stages.labels(stage=stage).observe(max(0.0, seconds))

    def callback(self, process_status: int, outcome: CallbackOutcome, seconds: float) -> None:
        self.callbacks.labels(process_status=str(process_status), outcome=outcome).inc()
        self.stages.labels(stage="callback").observe(max(0.0, seconds))

    def credits(self, kind: CreditKind, amount: int) -> None:
        if amount > 0:
            self.credits_counter.labels(kind=kind).inc(amount)

    def slots_busy(self, busy: int) -> None:
        self.busy.set(busy)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()
        self.http_duration.labels(method=method, route=route).observe(max(0.0, seconds))
