"""The metrics adapter alone: the queue gauges' cache, the token rule, the worker's
loopback exposition server (a real HTTP server, scraped and checked by promtool)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest

from facelens.adapters.metrics import Metrics, ProcessInfo, QueueGauges
from facelens.application.telemetry import QueueStats, WorkerBeat
from facelens.core.errors import StoreUnavailable
from facelens.entrypoints.metrics_server import MetricsServer, token_accepted
from tests.ops.promtool import promtool


class ScriptedQueue:
    """An OpsStore whose answers the test sets (the adapter's logic, not the SQL)."""

    def __init__(self) -> None:
        self.stats = QueueStats(queued=5, running=2, callbacks_pending=1, oldest_queued_at_ms=0)
        self.down = False
        self.live: list[WorkerBeat] = []

    async def queue_stats(self) -> QueueStats:
        if self.down:
            raise StoreUnavailable("database unavailable: test")
        return self.stats

    async def record_heartbeat(self, beat: WorkerBeat) -> None:
        pass

    async def live_workers(self, seen_since_ms: int) -> Sequence[WorkerBeat]:
        return self.live

    async def forget_worker(self, worker_id: str) -> None:
        pass


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
    }


async def test_queue_gauges_read_the_store_at_most_once_a_second() -> None:
    now = [100.0]
    queue = ScriptedQueue()
    gauges = QueueGauges(queue, monotonic=lambda: now[0], wall_ms=lambda: 60_000)
    await asyncio.gather(*(gauges.refresh() for _ in range(5)))  # five scrapers at once
    assert gauges.reads == 1
    now[0] += 0.9
    await gauges.refresh()
    assert gauges.reads == 1
    now[0] += 0.2
    await gauges.refresh()
    assert gauges.reads == 2
    families = {family.name: family for family in gauges.collect()}
    depth = {s.labels["state"]: s.value for s in families["facelens_queue_depth"].samples}
    assert depth == {"queued": 5, "running": 2, "callbacks_pending": 1}
    assert families["facelens_oldest_queued_seconds"].samples[0].value == 60.0
    assert families["facelens_store_up"].samples[0].value == 1


async def test_a_slow_read_is_repeated_less_often() -> None:
    """A read of 0.5 s (a huge backlog) keeps its answer for 10 s, not 1 s."""
    now = [0.0]
    queue = ScriptedQueue()

    async def slow_stats() -> QueueStats:
        now[0] += 0.5
        return queue.stats

    queue.queue_stats = slow_stats  # type: ignore[method-assign]
    gauges = QueueGauges(queue, monotonic=lambda: now[0])
    await gauges.refresh()
    now[0] += 5
    await gauges.refresh()
    assert gauges.reads == 1
    now[0] += 5
    await gauges.refresh()
    assert gauges.reads == 2


async def test_unreachable_store_drops_the_queue_gauges_instead_of_going_stale() -> None:
    now = [0.0]
    queue = ScriptedQueue()
    gauges = QueueGauges(queue, monotonic=lambda: now[0])
    await gauges.refresh()
    queue.down = True
    now[0] += 5
    await gauges.refresh()
    families = {family.name: family for family in gauges.collect()}
    assert set(families) == {"facelens_store_up"}
    assert families["facelens_store_up"].samples[0].value == 0


def test_counters_start_at_zero_and_move() -> None:
    metrics = Metrics(ProcessInfo(version="1", role="worker", model="centerface"), worker_slots=4)
    before = _samples(metrics)
    assert before[("facelens_stage_duration_seconds_count", (("stage", "detect"),))] == 0
    assert before[("facelens_credits_total", (("kind", "refunded"),))] == 0
    assert before[("facelens_worker_slots", ())] == 4
    metrics.tasks_submitted(3)
    metrics.task_finished(False, "IMAGE_DOWNLOAD_FAILED")
    metrics.stage("detect", 0.04)
    metrics.callback(2, "retried", 0.2)
    metrics.credits("refunded", 1)
    after = _samples(metrics)
    assert after[("facelens_tasks_submitted_total", ())] == 3
    key = (("error_code", "IMAGE_DOWNLOAD_FAILED"), ("result", "failed"))
    assert after[("facelens_tasks_finished_total", key)] == 1
    assert after[("facelens_stage_duration_seconds_count", (("stage", "detect"),))] == 1
    assert after[("facelens_stage_duration_seconds_count", (("stage", "callback"),))] == 1
    status = (("outcome", "retried"), ("process_status", "2"))
    assert after[("facelens_callbacks_total", status)] == 1
    assert after[("facelens_credits_total", (("kind", "refunded"),))] == 1
    info = (("backend", ""), ("mode", ""), ("model", "centerface"))
    assert after[("facelens_model_info", info)] == 1


def test_each_metrics_object_has_its_own_registry() -> None:
    first = Metrics(ProcessInfo(version="1", role="serve"))
    second = Metrics(ProcessInfo(version="1", role="serve"))
    first.tasks_submitted(1)
    assert _samples(second)[("facelens_tasks_submitted_total", ())] == 0


@pytest.mark.parametrize(
    ("header", "token", "accepted"),
    [
        (None, "", True),
        ("Bearer s3cret", "s3cret", True),
        ("bearer s3cret ", "s3cret", True),
        (None, "s3cret", False),
        ("Bearer wrong", "s3cret", False),
        ("Basic s3cret", "s3cret", False),
        ("s3cret", "s3cret", False),
    ],
)
def test_token_rule(header: str | None, token: str, accepted: bool) -> None:
    assert token_accepted(header, token) is accepted


async def test_worker_metrics_server_serves_a_valid_exposition_behind_its_token() -> None:
    metrics = Metrics(ProcessInfo(version="1", role="worker"), worker_slots=2)
    metrics.watch_queue(ScriptedQueue())
    metrics.stage("detect", 0.03)
    server = MetricsServer(metrics, asyncio.get_running_loop(), "127.0.0.1", 0, "tok").start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        async with httpx.AsyncClient() as client:
            refused = await client.get(url)
            answer = await client.get(url, headers={"Authorization": "Bearer tok"})
            elsewhere = await client.get(url.replace("/metrics", "/"))
    finally:
        await asyncio.to_thread(server.close)
    assert refused.status_code == 401
    assert elsewhere.status_code == 404
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'facelens_queue_depth{state="queued"} 5.0' in answer.text
    assert 'facelens_stage_duration_seconds_count{stage="detect"} 1.0' in answer.text
    promtool("check", "metrics", stdin=answer.content)
