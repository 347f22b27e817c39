"""Retention: old finished tasks go with their callbacks and attempts; the ledger stays.

Real databases (SQLite and PostgreSQL): the purge deletes across the foreign keys in
one transaction per batch, so a broken reference or a missed child table fails here.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from facelens.adapters.store.sql_store import SqlStore
from facelens.application.ports import TaskFinish
from facelens.application.retention import DAY_MS, Retention, RetentionConfig
from facelens.core.callbacks import start_body
from facelens.core.domain import Account, DeliveryAttempt

from .conftest import T0, WORKER_LEASE_MS, failure, new_account, submit_tasks, success

OLD = T0 + 1_000_000
RECENT = OLD + 40 * DAY_MS
CUTOFF = OLD + 10 * DAY_MS


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


async def finished(
    store: SqlStore, account: Account, count: int, ended: int, *, fail: bool = False
) -> list[int]:
    """`count` tasks claimed and finished at `ended` (failures refunded)."""
    ids = await submit_tasks(store, account, count, now_ms=ended - 100)
    claimed = await store.claim_tasks("w", count, WORKER_LEASE_MS, ended - 50, start_body)
    assert sorted(t.id for t in claimed) == ids
    outcome = failure(ended) if fail else success(ended)
    finishes = [TaskFinish(task_id, outcome, "{}", fail) for task_id in ids]
    assert await store.finish_tasks("w", finishes, ended) == set(ids)
    return ids


async def deliver_all(store: SqlStore, now: int) -> None:
    """Deliver every due callback (start ones first, then the complete ones)."""
    while jobs := await store.claim_deliveries("d", 100, 10_000, now):
        for job in jobs:
            attempt = DeliveryAttempt(attempted_at_ms=now, http_status=200, error="", duration_ms=3)
            await store.record_delivery_attempt(job.id, "d", attempt, True, None)


async def count_rows(store: SqlStore, table: str, where: str = "") -> int:
    async with store.engine.connect() as conn:
        value = await conn.scalar(sa.text(f"SELECT count(*) FROM {table} {where}"))
    return int(value or 0)


async def test_purge_deletes_old_finished_tasks_with_their_rows_and_keeps_the_ledger(
    store: SqlStore,
) -> None:
    account = await new_account(store, credits=100)
    old = await finished(store, account, 3, OLD)
    old_failed = await finished(store, account, 2, OLD, fail=True)  # refunded: ledger rows
    recent = await finished(store, account, 2, RECENT)
    await deliver_all(store, RECENT + 1)
    waiting = await finished(store, account, 1, OLD)  # its callbacks never delivered
    queued = await submit_tasks(store, account, 2, now_ms=OLD)
    ledger_before = await count_rows(store, "ledger")
    balance = (await store.get_account(account.id)).credits  # type: ignore[union-attr]
    assert await count_rows(store, "delivery_attempts") == 14  # start + complete of 7

    purged = [await store.purge_finished(CUTOFF, 3) for _ in range(3)]
    assert purged == [3, 2, 0]  # batches of at most 3, then nothing left to do

    for task_id in old + old_failed:
        assert await store.get_task(account.id, task_id) is None
    for task_id in recent + waiting + queued:
        assert await store.get_task(account.id, task_id) is not None
    gone = ",".join(str(t) for t in old + old_failed)
    assert await count_rows(store, "deliveries", f"WHERE task_id IN ({gone})") == 0
    assert await count_rows(store, "delivery_attempts") == 4  # the recent tasks' only
    # the ledger keeps every row, refunds of purged tasks included; balances agree
    assert await count_rows(store, "ledger") == ledger_before
    refunds = await count_rows(store, "ledger", f"WHERE task_id IN ({gone})")
    assert refunds == len(old_failed)
    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == balance == await store.ledger_sum(account.id)
    # a new task still gets an id and runs: the purge left the queue intact
    claimed = await store.claim_tasks("w2", 10, WORKER_LEASE_MS, RECENT + 2, start_body)
    assert sorted(t.id for t in claimed) == queued


async def test_the_retention_loop_purges_in_batches_until_stopped(store: SqlStore) -> None:
    account = await new_account(store, credits=100)
    old = await finished(store, account, 7, OLD)
    recent = await finished(store, account, 1, RECENT)
    await deliver_all(store, RECENT + 1)
    clock = FixedClock(OLD + 31 * DAY_MS)
    loop = Retention(store, clock, RetentionConfig(days=30, batch=2, pause_s=0, interval_s=60))
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(stop))
    try:
        for _ in range(1500):  # a 30 s deadline
            if await count_rows(store, "tasks") == len(recent):
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert all([await store.get_task(account.id, t) is None for t in old])
    assert await store.get_task(account.id, recent[0]) is not None


async def test_zero_days_keeps_everything(store: SqlStore) -> None:
    account = await new_account(store, credits=10)
    await finished(store, account, 2, OLD)
    loop = Retention(store, FixedClock(RECENT * 2), RetentionConfig(days=0))
    await asyncio.wait_for(loop.run(asyncio.Event()), 5)  # returns at once
    assert await count_rows(store, "tasks") == 2
