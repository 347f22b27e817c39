"""An account's self-service queries on both databases: task pages, redelivery of a
complete callback, usage per UTC day, revoking its own keys."""

from __future__ import annotations

from facelens.adapters.store.sql_store import SqlStore
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import start_body
from facelens.core.domain import DeliveryAttempt, DeliveryStatus, ProcessStatus, TaskStatus
from facelens.core.self_service import DAY_MS, Redelivery, TaskFilter

from .conftest import T0, WORKER_LEASE_MS, failure, new_account, submit_tasks, success

NOW = T0 + 50_000
LEASE = 10_000


async def settle_callbacks(store: SqlStore, at: int, delivered: bool = True) -> None:
    """Send every due callback once, as a dispatcher would (start before complete)."""
    for step in range(4):
        for job in await store.claim_deliveries("d", 100, LEASE, at + step):
            attempt = DeliveryAttempt(at + step, 200 if delivered else 500, "", 5)
            await store.record_delivery_attempt(job.id, "d", attempt, delivered, None)


async def test_task_pages_newest_first_filtered_and_per_account(store: SqlStore) -> None:
    acme = await new_account(store)
    other = await new_account(store, name="other")
    first = await submit_tasks(store, acme, 3, creation_id="a" * 32)
    second = await submit_tasks(store, acme, 2, creation_id="b" * 32)
    await submit_tasks(store, other, 2)
    claimed = await store.claim_tasks("w", 1, WORKER_LEASE_MS, NOW, start_body)
    assert [task.id for task in claimed] == [first[0]]
    await store.finish_tasks("w", [TaskFinish(first[0], failure(NOW + 1), "{}", True)], NOW + 1)

    everything = [*first, *second][::-1]
    page = await store.list_tasks(acme.id, TaskFilter(), 100)
    assert [view.id for view in page] == everything
    pages: list[int] = []
    before: int | None = None
    while True:
        views = await store.list_tasks(acme.id, TaskFilter(before_id=before), 2)
        pages += [view.id for view in views]
        if len(views) < 2:
            break
        before = views[-1].id
    assert pages == everything

    by_creation = await store.list_tasks(acme.id, TaskFilter(creation_id="a" * 32), 10)
    assert [view.id for view in by_creation] == first[::-1]
    (failed,) = await store.list_tasks(acme.id, TaskFilter(status=TaskStatus.FAILED), 10)
    assert failed.id == first[0] and failed.deliveries  # a view like get_task's
    queued = await store.list_tasks(
        acme.id, TaskFilter(status=TaskStatus.QUEUED, before_id=second[1]), 10
    )
    assert [view.id for view in queued] == [second[0], first[2], first[1]]
    assert await store.list_tasks(other.id, TaskFilter(creation_id="a" * 32), 10) == []
    # a NUL (`%00` in a URL) is no error on PostgreSQL either: nothing matches it
    assert await store.list_tasks(acme.id, TaskFilter(creation_id="a\x00"), 10) == []
    assert await store.get_creation(acme.id, "a" * 31 + "\x00") == []


async def test_redeliver_makes_a_settled_complete_callback_due_again(store: SqlStore) -> None:
    acme = await new_account(store)
    other = await new_account(store, name="other")
    (task_id,) = await submit_tasks(store, acme, 1)
    assert await store.redeliver(acme.id, task_id, NOW) is Redelivery.NOT_FINISHED
    await store.claim_tasks("w", 1, WORKER_LEASE_MS, NOW, start_body)
    body = '{"complete":true}'
    await store.finish_tasks("w", [TaskFinish(task_id, success(NOW + 5), body, False)], NOW + 5)
    assert await store.redeliver(acme.id, task_id, NOW + 6) is Redelivery.PENDING
    await settle_callbacks(store, NOW + 10)
    assert await store.redeliver(other.id, task_id, NOW + 20) is Redelivery.NOT_FOUND

    assert await store.redeliver(acme.id, task_id, NOW + 30) is Redelivery.SCHEDULED
    assert await store.redeliver(acme.id, task_id, NOW + 31) is Redelivery.PENDING  # one pending
    view = await store.get_task(acme.id, task_id)
    assert view is not None
    start, complete = view.deliveries
    assert start.status is DeliveryStatus.DELIVERED and start.redelivered_at_ms is None
    assert complete.status is DeliveryStatus.PENDING and complete.attempts == 0
    assert complete.redelivered_at_ms == NOW + 30 and len(complete.history) == 1

    (job,) = await store.claim_deliveries("d", 10, LEASE, NOW + 32)
    assert (job.task_id, job.process_status, job.body) == (task_id, ProcessStatus.COMPLETED, body)
    assert job.attempts == 0  # the usual retry schedule from its start
    await store.record_delivery_attempt(
        job.id, "d", DeliveryAttempt(NOW + 33, 200, "", 4), True, None
    )
    view = await store.get_task(acme.id, task_id)
    assert view is not None
    assert view.deliveries[1].status is DeliveryStatus.DELIVERED
    assert len(view.deliveries[1].history) == 2
    assert await store.redeliver(acme.id, task_id, NOW + 40) is Redelivery.SCHEDULED


async def test_daily_usage_by_utc_day(store: SqlStore) -> None:
    acme = await new_account(store, credits=100)
    day0 = T0 // DAY_MS
    yesterday = day0 * DAY_MS - 1_000
    await submit_tasks(store, acme, 2, now_ms=yesterday)
    await submit_tasks(store, acme, 1, now_ms=day0 * DAY_MS + 5_000)
    claimed = await store.claim_tasks("w", 1, WORKER_LEASE_MS, NOW, start_body)
    finish = TaskFinish(claimed[0].id, failure(NOW + 1), "{}", True)
    await store.finish_tasks("w", [finish], day0 * DAY_MS + 6_000)  # refunded today

    days = await store.daily_usage(acme.id, (day0 - 1) * DAY_MS)
    assert [d.day for d in days] == [day0 - 1, day0]
    before, today = days
    assert before.tasks_by_status == {"failed": 1, "queued": 1}
    assert (before.credits_charged, before.credits_refunded) == (2, 0)
    assert today.tasks_by_status == {"queued": 1}
    assert (today.credits_charged, today.credits_refunded) == (1, 1)
    assert [d.day for d in await store.daily_usage(acme.id, day0 * DAY_MS)] == [day0]


async def test_an_account_revokes_only_its_own_key(store: SqlStore) -> None:
    acme = await new_account(store)
    other = await new_account(store, name="other")
    await store.add_key(acme.id, "fl_same0000", "a" * 64, T0)
    await store.add_key(other.id, "fl_same0000", "b" * 64, T0)
    assert await store.revoke_account_key(other.id, "fl_nokey000", NOW) is False
    assert await store.revoke_account_key(other.id, "fl_same0000", NOW) is True
    assert await store.revoke_account_key(other.id, "fl_same0000", NOW) is False
    (mine,) = await store.list_keys(acme.id)
    assert mine.revoked_at_ms is None
