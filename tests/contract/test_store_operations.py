"""The store's operations side: queue gauges, worker heartbeats, stored stage timings."""

from __future__ import annotations

from dataclasses import replace

from facelens.adapters.store.sql_store import SqlStore
from facelens.application.ports import TaskFinish
from facelens.application.telemetry import QueueStats, WorkerBeat
from facelens.core.callbacks import start_body
from facelens.core.timings import TIMING_KEYS, StageTimes

from .conftest import T0, WORKER_LEASE_MS, failure, new_account, submit_tasks, success

NOW = T0 + 10_000


async def test_queue_stats_count_the_queue_and_age_its_oldest_task(store: SqlStore) -> None:
    assert await store.queue_stats() == QueueStats(0, 0, 0, None)
    account = await new_account(store)
    await submit_tasks(store, account, 2, now_ms=T0 + 1_000)
    await submit_tasks(store, account, 3, now_ms=T0 + 2_000)

    claimed = await store.claim_tasks("w1", 2, WORKER_LEASE_MS, NOW, start_body)
    assert await store.queue_stats() == QueueStats(
        queued=3, running=2, callbacks_pending=2, oldest_queued_at_ms=T0 + 2_000
    )

    outcome = success(NOW + 5)
    finishes = [TaskFinish(task.id, outcome, "{}", False) for task in claimed]
    await store.finish_tasks("w1", finishes, NOW + 5)
    stats = await store.queue_stats()
    assert (stats.queued, stats.running, stats.callbacks_pending) == (3, 0, 4)


async def test_heartbeats_upsert_list_the_live_and_forget_the_stopped(store: SqlStore) -> None:
    first = WorkerBeat("worker@a:1", "a", 1, T0, T0, 0)
    second = WorkerBeat("worker@b:2", "b", 2, T0 + 500, T0 + 500, 0)
    await store.record_heartbeat(first)
    await store.record_heartbeat(second)
    await store.record_heartbeat(WorkerBeat("worker@a:1", "a", 1, T0, T0 + 20_000, tasks_done=42))

    live = await store.live_workers(T0 + 10_000)
    assert live == [WorkerBeat("worker@a:1", "a", 1, T0, T0 + 20_000, 42)]
    assert [beat.worker_id for beat in await store.live_workers(0)] == [
        "worker@a:1",
        "worker@b:2",
    ]

    await store.forget_worker("worker@a:1")
    assert [beat.worker_id for beat in await store.live_workers(0)] == ["worker@b:2"]
    await store.forget_worker("worker@nobody:0")  # idempotent


async def test_stage_timings_are_stored_with_the_outcome(store: SqlStore) -> None:
    account = await new_account(store)
    done, fetch_failed, waiting = await submit_tasks(store, account, 3, now_ms=T0)
    await store.claim_tasks("w1", 2, WORKER_LEASE_MS, T0 + 40, start_body)
    ok = replace(success(T0 + 400), stages=StageTimes(fetch_ms=120, decode_ms=15, detect_ms=210))
    failed = replace(failure(T0 + 300), stages=StageTimes(fetch_ms=250))
    recorded = await store.finish_tasks(
        "w1",
        [TaskFinish(done, ok, "{}", False), TaskFinish(fetch_failed, failed, "{}", True)],
        T0 + 500,
    )
    assert recorded == {done, fetch_failed}

    views = {
        task_id: await store.get_task(account.id, task_id)
        for task_id in (done, fetch_failed, waiting)
    }
    assert views[done] is not None and views[done].timings == {
        "queued_ms": 40,
        "fetch_ms": 120,
        "decode_ms": 15,
        "detect_ms": 210,
        "total_ms": 400,
    }
    assert views[fetch_failed] is not None and views[fetch_failed].timings == {
        "queued_ms": 40,
        "fetch_ms": 250,
        "decode_ms": None,
        "detect_ms": None,
        "total_ms": 300,
    }
    assert views[waiting] is not None
    assert views[waiting].timings == dict.fromkeys(TIMING_KEYS)
