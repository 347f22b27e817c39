"""The task queue: leases, start callbacks, exclusive claims, finishing, refunds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa

from facelens.adapters.store.sql_store import SqlStore
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import start_body
from facelens.core.domain import DeliveryStatus, ProcessStatus, TaskStatus

from .conftest import (
    T0,
    WORKER_LEASE_MS,
    new_account,
    submit_tasks,
    success,
)

NOW = T0 + 10_000


async def test_claim_leases_oldest_first_and_writes_start_delivery(store: SqlStore) -> None:
    account = await new_account(store)
    ids = await submit_tasks(store, account, 3)

    claimed = await store.claim_tasks("w1", 2, WORKER_LEASE_MS, NOW, start_body)
    assert [t.id for t in claimed] == ids[:2]
    first = claimed[0]
    assert first.attempts == 1 and first.started_at_ms == NOW
    assert first.account_id == account.id and first.callback_url == "https://client.example/cb"
    assert first.callback_params == {"n": 0}
    assert first.options.score_threshold == 0.6

    view = await store.get_task(account.id, first.id)
    assert view is not None and view.status is TaskStatus.RUNNING
    assert view.started_at_ms == NOW
    (start,) = view.deliveries
    assert start.process_status is ProcessStatus.STARTED
    assert start.status is DeliveryStatus.PENDING
    assert start.next_attempt_at_ms == NOW and start.attempts == 0

    # nothing is claimed twice while the lease runs; the rest comes next
    again = await store.claim_tasks("w2", 10, WORKER_LEASE_MS, NOW + 1, start_body)
    assert [t.id for t in again] == ids[2:]
    assert await store.claim_tasks("w2", 10, WORKER_LEASE_MS, NOW + 2, start_body) == []

    (job, *_) = await store.claim_deliveries("d", 10, 5_000, NOW + 3)
    assert job.task_id == first.id and job.body == start_body(first)
    assert json.loads(job.body)["start_time"] == NOW


async def test_concurrent_claimers_never_share_a_task(
    store: SqlStore, open_stores: Callable[[int], Awaitable[list[SqlStore]]]
) -> None:
    account = await new_account(store)
    ids = await submit_tasks(store, account, 40)
    claimers = await open_stores(4)

    async def drain(worker: str, on: SqlStore) -> list[int]:
        got: list[int] = []
        while batch := await on.claim_tasks(worker, 3, WORKER_LEASE_MS, NOW, start_body):
            got.extend(t.id for t in batch)
        return got

    results = await asyncio.gather(*(drain(f"w{n}", s) for n, s in enumerate(claimers)))
    everything = [task_id for got in results for task_id in got]
    assert sorted(everything) == ids  # each task exactly once
    # and exactly one start delivery per task
    jobs = await store.claim_deliveries("d", 100, 5_000, NOW)
    assert sorted(j.task_id for j in jobs) == ids


async def test_expired_lease_is_reclaimed_without_second_start_delivery(
    store: SqlStore,
) -> None:
    account = await new_account(store)
    (task_id,) = await submit_tasks(store, account, 1)
    (first,) = await store.claim_tasks("dead", 1, 1_000, NOW, start_body)

    assert await store.claim_tasks("w2", 1, 1_000, NOW + 999, start_body) == []  # not yet
    (second,) = await store.claim_tasks("w2", 1, 1_000, NOW + 1_001, start_body)
    assert second.id == task_id
    assert second.attempts == 2
    assert second.started_at_ms == first.started_at_ms == NOW  # the first start time stays

    view = await store.get_task(account.id, task_id)
    assert view is not None and len(view.deliveries) == 1
    # the dead worker's late result is refused; the live one's is stored
    assert (
        await store.finish_tasks(
            "dead", [TaskFinish(task_id, success(NOW + 1_500), "{}", False)], NOW
        )
        == set()
    )
    assert await store.finish_tasks(
        "w2", [TaskFinish(task_id, success(NOW + 1_600), "{}", False)], NOW
    ) == {task_id}


async def test_renew_and_release(store: SqlStore) -> None:
    account = await new_account(store)
    ids = await submit_tasks(store, account, 3)
    await store.claim_tasks("w1", 2, 1_000, NOW, start_body)

    assert await store.renew_leases("w1", ids, NOW + 5_000) == 2  # ids[2] is not w1's
    assert await store.renew_leases("w2", ids, NOW + 5_000) == 0
    assert await store.renew_leases("w1", [], NOW + 5_000) == 0
    # renewed: not claimable after the original 1 s lease
    (other,) = await store.claim_tasks("w2", 5, 1_000, NOW + 2_000, start_body)
    assert other.id == ids[2]

    assert await store.release_tasks("w1", [ids[0]]) == 1
    assert await store.release_tasks("w1", [ids[2]]) == 0  # w2 holds it
    (back,) = await store.claim_tasks("w3", 5, 1_000, NOW + 2_001, start_body)
    assert back.id == ids[0]
    assert back.attempts == 1  # a graceful release is not an attempt
    assert back.started_at_ms == NOW
    view = await store.get_task(account.id, ids[0])
    assert view is not None and len(view.deliveries) == 1


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_postgres_claim_skips_locked_rows(store: SqlStore) -> None:
    """A row another transaction has locked is skipped, not waited for (SQLite needs no
    such test: its writers are serialized)."""
    account = await new_account(store)
    ids = await submit_tasks(store, account, 2)
    async with store.engine.connect() as blocker, blocker.begin():
        await blocker.execute(
            sa.text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": ids[0]}
        )
        claimed = await asyncio.wait_for(
            store.claim_tasks("w1", 5, WORKER_LEASE_MS, NOW, start_body), timeout=5
        )
        assert [t.id for t in claimed] == [ids[1]]
