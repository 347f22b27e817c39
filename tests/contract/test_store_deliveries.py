"""The callback outbox: ordering per task, leases, attempt bookkeeping."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from facelens.adapters.store.sql_store import SqlStore
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import start_body
from facelens.core.domain import (
    Account,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryView,
    ProcessStatus,
)

from .conftest import T0, WORKER_LEASE_MS, new_account, submit_tasks, success

NOW = T0 + 50_000
LEASE = 10_000


def attempt(at: int, status: int | None = 200, error: str = "") -> DeliveryAttempt:
    return DeliveryAttempt(attempted_at_ms=at, http_status=status, error=error, duration_ms=12)


async def finished_task(store: SqlStore, account: Account) -> int:
    """A task that started and finished: both its deliveries are pending."""
    (task_id,) = await submit_tasks(store, account, 1)
    await store.claim_tasks("w", 1, WORKER_LEASE_MS, NOW, start_body)
    assert await store.finish_tasks(
        "w", [TaskFinish(task_id, success(NOW + 5), '{"c":2}', False)], NOW + 5
    ) == {task_id}
    return task_id


async def deliveries_of(store: SqlStore, account: Account, task_id: int) -> list[DeliveryView]:
    view = await store.get_task(account.id, task_id)
    assert view is not None
    return list(view.deliveries)


async def test_complete_waits_for_start_delivered(store: SqlStore) -> None:
    account = await new_account(store)
    task_id = await finished_task(store, account)

    (start,) = await store.claim_deliveries("d1", 10, LEASE, NOW + 10)
    assert start.process_status is ProcessStatus.STARTED
    assert start.webhook_secret == "whsec_acme"
    assert start.callback_url == "https://client.example/cb"
    # start in flight (leased, still pending): the complete callback is not due
    assert await store.claim_deliveries("d2", 10, LEASE, NOW + 11) == []

    await store.record_delivery_attempt(start.id, "d1", attempt(NOW + 12), True, None)
    (complete,) = await store.claim_deliveries("d2", 10, LEASE, NOW + 13)
    assert complete.process_status is ProcessStatus.COMPLETED
    assert complete.task_id == task_id and complete.body == '{"c":2}'


async def test_complete_waits_while_start_is_retrying_then_goes_after_it_fails(
    store: SqlStore,
) -> None:
    account = await new_account(store)
    await finished_task(store, account)

    (start,) = await store.claim_deliveries("d1", 10, LEASE, NOW + 10)
    await store.record_delivery_attempt(start.id, "d1", attempt(NOW + 11, 500), False, NOW + 5_000)
    # retry scheduled: start not due yet, and complete still blocked behind it
    assert await store.claim_deliveries("d1", 10, LEASE, NOW + 100) == []
    (retry,) = await store.claim_deliveries("d1", 10, LEASE, NOW + 5_000)
    assert retry.id == start.id and retry.attempts == 1
    await store.record_delivery_attempt(
        retry.id, "d1", attempt(NOW + 5_001, None, "timeout"), False, None
    )

    (complete,) = await store.claim_deliveries("d1", 10, LEASE, NOW + 5_002)
    assert complete.process_status is ProcessStatus.COMPLETED


async def test_attempt_transitions_and_history(store: SqlStore) -> None:
    account = await new_account(store)
    task_id = await finished_task(store, account)

    (start,) = await store.claim_deliveries("d1", 10, LEASE, NOW + 10)
    await store.record_delivery_attempt(start.id, "d1", attempt(NOW + 11, 503), False, NOW + 20)
    start_view, _ = await deliveries_of(store, account, task_id)
    assert start_view.status is DeliveryStatus.PENDING
    assert (start_view.attempts, start_view.next_attempt_at_ms) == (1, NOW + 20)
    assert (start_view.last_http_status, start_view.last_error) == (503, "")

    (again,) = await store.claim_deliveries("d1", 10, LEASE, NOW + 20)
    await store.record_delivery_attempt(again.id, "d1", attempt(NOW + 21), True, None)
    (complete,) = await store.claim_deliveries("d1", 10, LEASE, NOW + 22)
    await store.record_delivery_attempt(
        complete.id, "d1", attempt(NOW + 23, None, "connection refused"), False, None
    )

    start_view, complete_view = await deliveries_of(store, account, task_id)
    assert start_view.status is DeliveryStatus.DELIVERED
    assert start_view.attempts == 2 and start_view.next_attempt_at_ms is None
    assert [(a.attempted_at_ms, a.http_status) for a in start_view.history] == [
        (NOW + 11, 503),
        (NOW + 21, 200),
    ]
    assert complete_view.status is DeliveryStatus.FAILED
    assert complete_view.last_error == "connection refused"
    assert complete_view.history == (attempt(NOW + 23, None, "connection refused"),)
    assert await store.claim_deliveries("d1", 10, LEASE, NOW + 10**9) == []


async def test_only_the_lease_holder_records(store: SqlStore) -> None:
    account = await new_account(store)
    task_id = await finished_task(store, account)

    (start,) = await store.claim_deliveries("d1", 10, LEASE, NOW)
    assert await store.claim_deliveries("d2", 10, LEASE, NOW + LEASE - 1) == []
    # d1 stalls past its lease; d2 takes over and is the one whose outcome counts
    (taken,) = await store.claim_deliveries("d2", 10, LEASE, NOW + LEASE + 1)
    assert taken.id == start.id
    await store.record_delivery_attempt(start.id, "d1", attempt(NOW + LEASE + 2, 500), False, NOW)
    await store.record_delivery_attempt(start.id, "d2", attempt(NOW + LEASE + 3), True, None)
    # a repeated record (say a retry after a lost acknowledgement) changes nothing
    await store.record_delivery_attempt(start.id, "d2", attempt(NOW + LEASE + 4), True, None)

    start_view, _ = await deliveries_of(store, account, task_id)
    assert start_view.status is DeliveryStatus.DELIVERED
    assert start_view.attempts == 1
    assert [a.attempted_at_ms for a in start_view.history] == [NOW + LEASE + 3]


async def test_due_order_and_concurrent_dispatchers(
    store: SqlStore, open_stores: Callable[[int], Awaitable[list[SqlStore]]]
) -> None:
    account = await new_account(store)
    ids = await submit_tasks(store, account, 12)
    for n in range(12):  # start callbacks due one millisecond apart, oldest first
        await store.claim_tasks("w", 1, WORKER_LEASE_MS, NOW + n, start_body)

    (first, second) = await store.claim_deliveries("d0", 2, LEASE, NOW + 100)
    assert (first.task_id, second.task_id) == (ids[0], ids[1])

    dispatchers = await open_stores(3)
    results = await asyncio.gather(
        *(s.claim_deliveries(f"d{n}", 4, LEASE, NOW + 100) for n, s in enumerate(dispatchers))
    )
    got = sorted(job.task_id for jobs in results for job in jobs)
    assert got == ids[2:]
