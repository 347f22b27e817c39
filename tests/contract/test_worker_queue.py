"""The real `Worker` on a real store (SQLite and PostgreSQL): batched claims and
finishes, a lease lost mid-task, graceful stop, in-process wake-up."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from facelens.adapters.store.sql_store import SqlStore
from facelens.adapters.store.tables import deliveries
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import start_body
from facelens.core.domain import ProcessStatus, TaskStatus

from .conftest import WORKER_LEASE_MS, failure, new_account, submit_tasks
from .workers import ObservedStore, make_worker, running


async def complete_count(store: SqlStore) -> dict[int, int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(deliveries.c.task_id, sa.func.count())
            .where(deliveries.c.process_status == int(ProcessStatus.COMPLETED))
            .group_by(deliveries.c.task_id)
        )
        return {int(task_id): int(n) for task_id, n in rows}


async def test_claims_and_finishes_come_in_batches(database_url: str, store: SqlStore) -> None:
    account = await new_account(store, credits=100)
    ids = await submit_tasks(store, account, 40)
    observed = ObservedStore(database_url)
    # A long finish wait: a batch goes out when full or when nothing else is in flight,
    # never because a timer fired first on a slow machine.
    worker, _ = make_worker(observed, concurrency=4, finish_wait_s=30.0, prefetch_below_s=30.0)
    try:
        async with running(worker):
            await observed.until(lambda: observed.recorded == set(ids))
    finally:
        await observed.close()

    sizes = [n for n in observed.claims if n]
    assert sum(sizes) == 40
    # the first claim fills the 4 slots; then tasks are known to be fast and claims
    # hold up to 8: never fewer than 4 at a time (but for the end of the queue)
    assert sizes[0] == 4 and min(sizes[:-1]) >= 4, sizes
    assert len(observed.finishes) <= 10, [len(b) for b, _ in observed.finishes]
    assert all(held == set(batch) for batch, held in observed.finishes)
    for task_id in ids:
        view = await store.get_task(account.id, task_id)
        assert view is not None and view.status is TaskStatus.SUCCEEDED
    assert await complete_count(store) == dict.fromkeys(ids, 1)
    assert await store.ledger_sum(account.id) == 60


async def test_slow_tasks_are_claimed_per_free_slots_not_ahead(
    database_url: str, store: SqlStore
) -> None:
    """With slow analyses nothing is claimed ahead: the worker holds its concurrency."""
    account = await new_account(store, credits=100)
    await submit_tasks(store, account, 10)
    observed = ObservedStore(database_url)
    worker, fetcher = make_worker(observed, concurrency=2, prefetch_below_s=0.0)
    fetcher.gate.clear()
    try:
        async with running(worker):
            for _ in range(2):
                await asyncio.wait_for(fetcher.started.get(), 10)
            assert worker.held == frozenset(await _running_ids(store))
            assert len(worker.held) == 2
            fetcher.gate.set()
            await observed.until(lambda: len(observed.recorded) == 10)
    finally:
        await observed.close()
    assert max(observed.claims) <= 2, observed.claims


async def _running_ids(store: SqlStore) -> list[int]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT id FROM tasks WHERE status = 'running'"))
        return [int(r[0]) for r in rows]


async def test_a_lease_lost_mid_task_is_not_finished_twice(
    database_url: str, store: SqlStore
) -> None:
    account = await new_account(store, credits=5)
    (task_id,) = await submit_tasks(store, account, 1)
    observed = ObservedStore(database_url)
    worker, fetcher = make_worker(observed, concurrency=1, lease_ms=WORKER_LEASE_MS)
    fetcher.gate.clear()
    try:
        async with running(worker):
            await asyncio.wait_for(fetcher.started.get(), 10)
            # Its lease "expires" (a claim from the future) and another worker takes
            # the task over and finishes it (failed, refunded).
            later = int(time.time() * 1000) + 10 * WORKER_LEASE_MS
            (stolen,) = await store.claim_tasks("thief", 1, WORKER_LEASE_MS, later, start_body)
            assert stolen.id == task_id and stolen.attempts == 2
            finish = TaskFinish(task_id, failure(later), '{"by":"thief"}', refund=True)
            assert await store.finish_tasks("thief", [finish], later) == {task_id}
            fetcher.gate.set()  # the first worker's analysis ends now
            await observed.until(lambda: len(observed.finishes) == 1)
            assert observed.finishes == [([task_id], set())]  # skipped: not held
            assert worker.held == frozenset()
    finally:
        await observed.close()
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.status is TaskStatus.FAILED
    async with store.engine.connect() as conn:
        bodies = (
            await conn.execute(
                sa.select(deliveries.c.body).where(
                    deliveries.c.process_status == int(ProcessStatus.COMPLETED)
                )
            )
        ).scalars()
        assert list(bodies) == ['{"by":"thief"}']
    assert await store.ledger_sum(account.id) == 5  # charged once, refunded once


async def test_graceful_stop_releases_what_the_grace_cuts(
    database_url: str, store: SqlStore
) -> None:
    account = await new_account(store, credits=5)
    ids = await submit_tasks(store, account, 3)
    observed = ObservedStore(database_url)
    worker, fetcher = make_worker(observed, concurrency=2, stop_grace_s=0.1)
    fetcher.gate.clear()
    try:
        async with running(worker):
            for _ in range(2):
                await asyncio.wait_for(fetcher.started.get(), 10)
    finally:
        await observed.close()
    assert observed.finishes == []
    for task_id in ids:
        view = await store.get_task(account.id, task_id)
        assert view is not None and view.status is TaskStatus.QUEUED
    assert [t.attempts for t in await store.claim_tasks("w2", 5, 1_000, 0, start_body)] == [1] * 3


async def test_wake_starts_work_before_the_next_poll(database_url: str, store: SqlStore) -> None:
    account = await new_account(store, credits=5)
    observed = ObservedStore(database_url)
    worker, _ = make_worker(observed, poll_interval_s=600.0)
    try:
        async with running(worker):
            await observed.until(lambda: observed.empty_claims >= 1)  # idle now
            (task_id,) = await submit_tasks(store, account, 1)
            worker.wake()  # what an in-process submission (or a NOTIFY) does
            await observed.until(lambda: task_id in observed.recorded, within_s=10)
    finally:
        await observed.close()
