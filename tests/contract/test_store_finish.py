"""Finishing (`finish_tasks`, one task or a batch): the stored result, the held check
per task, complete callbacks, refunds, and nothing written twice or for a task another
worker took over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa

from facelens.adapters.store.sql_store import SqlStore
from facelens.adapters.store.tables import deliveries, ledger
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import start_body
from facelens.core.domain import DeliveryStatus, ProcessStatus, TaskStatus

from .conftest import T0, WORKER_LEASE_MS, failure, new_account, submit_tasks, success

NOW = T0 + 10_000


async def complete_bodies(store: SqlStore) -> dict[int, list[str]]:
    """task id -> bodies of its complete deliveries (a list, to see duplicates)."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(deliveries.c.task_id, deliveries.c.body).where(
                deliveries.c.process_status == int(ProcessStatus.COMPLETED)
            )
        )
        found: dict[int, list[str]] = {}
        for task_id, body in rows:
            found.setdefault(int(task_id), []).append(body)
        return found


async def refund_rows(store: SqlStore) -> list[tuple[int, int, int, str]]:
    """(account_id, delta, task_id, creation_id) of every refund ledger row."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(ledger.c.account_id, ledger.c.delta, ledger.c.task_id, ledger.c.creation_id)
            .where(ledger.c.reason == "refund")
            .order_by(ledger.c.task_id)
        )
        return [(int(a), int(d), int(t), str(c)) for a, d, t, c in rows]


async def test_batch_records_held_tasks_and_skips_a_lost_one(store: SqlStore) -> None:
    account = await new_account(store, credits=10)
    ids = await submit_tasks(store, account, 4, creation_id="c" * 32)
    await store.claim_tasks("w1", 4, 1_000, NOW, start_body)
    # ids[3]'s lease expires and another worker takes it over.
    await store.renew_leases("w1", ids[:3], NOW + 60_000)
    (stolen,) = await store.claim_tasks("w2", 5, WORKER_LEASE_MS, NOW + 1_001, start_body)
    assert stolen.id == ids[3]

    batch = [
        TaskFinish(ids[0], success(NOW + 100), '{"n":0}', refund=False),
        TaskFinish(ids[1], failure(NOW + 110), '{"n":1}', refund=True),
        TaskFinish(ids[2], failure(NOW + 120), '{"n":2}', refund=False),
        TaskFinish(ids[3], success(NOW + 130), '{"n":3}', refund=True),  # w2's now
    ]
    assert await store.finish_tasks("w1", batch, NOW + 200) == set(ids[:3])

    views = [await store.get_task(account.id, task_id) for task_id in ids]
    assert [v.status if v else None for v in views] == [
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.FAILED,
        TaskStatus.RUNNING,  # untouched: w2 holds it
    ]
    assert views[0] is not None and views[0].ended_at_ms == NOW + 100
    assert views[0].result is not None and views[0].result["result_code"] == 1
    assert views[1] is not None and views[1].result is not None
    assert views[1].result["error_code"] == "IMAGE_DOWNLOAD_FAILED"
    assert views[3] is not None and views[3].result is None
    assert await complete_bodies(store) == {
        ids[0]: ['{"n":0}'],
        ids[1]: ['{"n":1}'],
        ids[2]: ['{"n":2}'],
    }
    # one refund, for the failure that asked for it (not for the lost task)
    assert await refund_rows(store) == [(account.id, 1, ids[1], "c" * 32)]
    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == 7 == await store.ledger_sum(account.id)

    # The same batch again (a retry after a lost commit acknowledgement): nothing is
    # held any more, nothing is written twice.
    assert await store.finish_tasks("w1", batch, NOW + 300) == set()
    assert {k: len(v) for k, v in (await complete_bodies(store)).items()} == {
        ids[0]: 1,
        ids[1]: 1,
        ids[2]: 1,
    }
    assert len(await refund_rows(store)) == 1
    assert await store.ledger_sum(account.id) == 7

    # The new holder finishes its task normally.
    assert await store.finish_tasks("w2", [batch[3]], NOW + 400) == {ids[3]}
    assert len(await refund_rows(store)) == 2
    assert await store.ledger_sum(account.id) == 8


async def test_refunds_of_several_accounts_in_one_batch(store: SqlStore) -> None:
    first = await new_account(store, credits=5, name="first")
    second = await new_account(store, credits=5, name="second")
    a = await submit_tasks(store, first, 2)
    b = await submit_tasks(store, second, 3)
    claimed = await store.claim_tasks("w1", 10, WORKER_LEASE_MS, NOW, start_body)
    assert sorted(t.id for t in claimed) == sorted(a + b)

    batch = [TaskFinish(t, failure(NOW + 5), "{}", refund=True) for t in (*a, *b)]
    assert await store.finish_tasks("w1", batch, NOW + 10) == set(a + b)
    for account, expected in ((first, 5), (second, 5)):
        fresh = await store.get_account(account.id)
        assert fresh is not None and fresh.credits == expected
        assert await store.ledger_sum(account.id) == expected
        usage = await store.usage(account.id)
        assert usage.credits_refunded == usage.credits_charged
    assert sorted((row[0], row[2]) for row in await refund_rows(store)) == sorted(
        [(first.id, t) for t in a] + [(second.id, t) for t in b]
    )


async def test_queued_and_foreign_tasks_are_not_finished(store: SqlStore) -> None:
    account = await new_account(store, credits=5)
    ids = await submit_tasks(store, account, 2)
    await store.claim_tasks("w1", 1, WORKER_LEASE_MS, NOW, start_body)  # ids[0] only
    batch = [TaskFinish(t, failure(NOW), "{}", refund=True) for t in ids]
    assert await store.finish_tasks("intruder", batch, NOW) == set()
    assert await store.finish_tasks("w1", batch, NOW) == {ids[0]}  # ids[1] is queued
    queued = await store.get_task(account.id, ids[1])
    assert queued is not None and queued.status is TaskStatus.QUEUED
    assert list(await complete_bodies(store)) == [ids[0]]
    assert await store.ledger_sum(account.id) == 4


async def test_empty_and_duplicate_batches(store: SqlStore) -> None:
    account = await new_account(store)
    (task_id,) = await submit_tasks(store, account, 1)
    await store.claim_tasks("w1", 1, WORKER_LEASE_MS, NOW, start_body)
    assert await store.finish_tasks("w1", [], NOW) == set()
    twice = [TaskFinish(task_id, success(NOW), "{}", refund=False)] * 2
    with pytest.raises(ValueError, match="twice"):
        await store.finish_tasks("w1", twice, NOW)
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.status is TaskStatus.RUNNING


async def test_finishing_while_renewing_and_claiming(
    store: SqlStore, open_stores: Callable[[int], Awaitable[list[SqlStore]]]
) -> None:
    """A worker's lease renewal, its batched finishes and other workers' claims run at
    the same time on their own connections: no deadlock (PostgreSQL would report one
    as an error after deadlock_timeout), every task finished exactly once."""
    account = await new_account(store, credits=200)
    ids = await submit_tasks(store, account, 120)
    finisher, renewer, *claimers = await open_stores(4)
    mine = [t.id for t in await finisher.claim_tasks("w1", 60, WORKER_LEASE_MS, NOW, start_body)]

    async def finish_all() -> set[int]:
        done: set[int] = set()
        for start in range(0, len(mine), 6):
            chunk = mine[start : start + 6][::-1]  # any order in a batch
            batch = [TaskFinish(t, failure(NOW), "{}", refund=True) for t in chunk]
            done |= await finisher.finish_tasks("w1", batch, NOW + 1)
        return done

    async def renew_all() -> None:
        for _ in range(20):
            await renewer.renew_leases("w1", mine, NOW + 90_000)

    async def claim_rest(worker: str, on: SqlStore) -> list[int]:
        got: list[int] = []
        while batch := await on.claim_tasks(worker, 4, WORKER_LEASE_MS, NOW, start_body):
            got += [t.id for t in batch]
            done = [TaskFinish(t.id, success(NOW), "{}", refund=False) for t in batch]
            assert await on.finish_tasks(worker, done, NOW + 2) == {t.id for t in batch}
        return got

    done, _, *others = await asyncio.wait_for(
        asyncio.gather(
            finish_all(),
            renew_all(),
            *(claim_rest(f"w{n + 2}", on) for n, on in enumerate(claimers)),
        ),
        timeout=60,
    )
    assert done == set(mine)
    assert sorted(mine + [t for got in others for t in got]) == ids
    assert {k: len(v) for k, v in (await complete_bodies(store)).items()} == dict.fromkeys(ids, 1)
    assert await store.ledger_sum(account.id) == 200 - 120 + len(mine)


async def test_finish_stores_result_and_schedules_complete_delivery(store: SqlStore) -> None:
    account = await new_account(store, credits=5)
    (task_id,) = await submit_tasks(store, account, 1)
    await store.claim_tasks("w1", 1, WORKER_LEASE_MS, NOW, start_body)

    assert await store.finish_tasks(
        "w1", [TaskFinish(task_id, success(NOW + 250), '{"done":1}', False)], NOW + 300
    ) == {task_id}
    view = await store.get_task(account.id, task_id)
    assert view is not None
    assert view.status is TaskStatus.SUCCEEDED and view.ended_at_ms == NOW + 250
    assert view.result == {
        "result_code": 1,
        "error_code": "",
        "error_info": "",
        "result_list": [success(0).faces[0].to_json()],
        "image": {"width": 640, "height": 480},
    }
    assert [(d.process_status, d.status) for d in view.deliveries] == [
        (ProcessStatus.STARTED, DeliveryStatus.PENDING),
        (ProcessStatus.COMPLETED, DeliveryStatus.PENDING),
    ]
    # finished once: a second finish (even by the same worker) writes nothing
    assert (
        await store.finish_tasks(
            "w1", [TaskFinish(task_id, failure(NOW + 400), "{}", True)], NOW + 400
        )
        == set()
    )
    assert await store.ledger_sum(account.id) == 4
    assert (await store.usage(account.id)).tasks_by_status["succeeded"] == 1


async def test_failure_with_refund_credits_back_once(store: SqlStore) -> None:
    account = await new_account(store, credits=5)
    (task_id,) = await submit_tasks(store, account, 1)
    await store.claim_tasks("w1", 1, WORKER_LEASE_MS, NOW, start_body)

    assert await store.finish_tasks(
        "w1", [TaskFinish(task_id, failure(NOW + 50), "{}", True)], NOW + 60
    ) == {task_id}
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.status is TaskStatus.FAILED
    assert view.result is not None
    assert view.result["error_code"] == "IMAGE_DOWNLOAD_FAILED"
    assert view.result["image"] is None and view.result["result_list"] == []
    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == 5 == await store.ledger_sum(account.id)
    usage = await store.usage(account.id)
    assert (usage.credits_charged, usage.credits_refunded) == (1, 1)


async def test_stale_worker_cannot_finish(store: SqlStore) -> None:
    account = await new_account(store, credits=5)
    (task_id,) = await submit_tasks(store, account, 1)
    assert (
        await store.finish_tasks("w1", [TaskFinish(task_id, success(NOW), "{}", True)], NOW)
        == set()
    )  # queued
    await store.claim_tasks("w1", 1, WORKER_LEASE_MS, NOW, start_body)
    assert (
        await store.finish_tasks("intruder", [TaskFinish(task_id, failure(NOW), "{}", True)], NOW)
        == set()
    )

    view = await store.get_task(account.id, task_id)
    assert view is not None and view.status is TaskStatus.RUNNING and view.result is None
    assert len(view.deliveries) == 1
    assert await store.ledger_sum(account.id) == 4
