"""Fair claims across accounts: a backlog only delays its own account.

Claims take tasks in fair-tag order (adapters/store/fairness.py): accounts with
queued work take turns, each keeps its own submission order, and an idle account
banks no priority for later.
"""

from __future__ import annotations

import uuid

from facelens.adapters.store.sql_store import SqlStore
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import start_body
from facelens.core.domain import Account, ClaimedTask

from .conftest import T0, WORKER_LEASE_MS, new_account, new_task, success

NOW = T0 + 10_000
BATCH = 8
"""A worker's claim batch (twice the default concurrency of 4)."""


async def submit(store: SqlStore, account: Account, count: int, chunk: int = 1000) -> list[int]:
    """`count` tasks in submissions of `chunk` (the API caps a submission at 100; the
    store takes any size, which keeps 10,000 tasks quick to queue)."""
    ids: list[int] = []
    for start in range(0, count, chunk):
        batch = [new_task(n) for n in range(start, min(count, start + chunk))]
        ids += await store.submit(
            account.id, uuid.uuid4().hex, "https://client.example/cb", batch, T0 + 1_000
        )
    return ids


async def claim(store: SqlStore, limit: int = BATCH, worker: str = "w1") -> list[ClaimedTask]:
    return await store.claim_tasks(worker, limit, WORKER_LEASE_MS, NOW, start_body)


async def test_one_task_of_a_new_account_starts_within_one_claim_batch_behind_a_backlog(
    store: SqlStore,
) -> None:
    a = await new_account(store, credits=20_000, name="a")
    b = await new_account(store, credits=10, name="b")
    backlog = await submit(store, a, 10_000)

    first = await claim(store)
    assert [t.id for t in first] == backlog[:BATCH]  # A's own order is kept

    (b_task,) = await submit(store, b, 1)
    second = await claim(store)
    assert b_task in [t.id for t in second]
    # ...and A is not starved either: the rest of that batch is A's, in order
    assert [t.id for t in second if t.account_id == a.id] == backlog[BATCH : 2 * BATCH - 1]

    # B's task was started (start callback scheduled), the backlog still waits
    view = await store.get_task(b.id, b_task)
    assert view is not None and view.started_at_ms == NOW and len(view.deliveries) == 1


async def test_backlogged_accounts_take_turns_and_keep_their_own_order(store: SqlStore) -> None:
    a = await new_account(store, credits=1_000, name="a")
    b = await new_account(store, credits=1_000, name="b")
    c = await new_account(store, credits=1_000, name="c")
    a_ids = await submit(store, a, 300, chunk=100)
    b_ids = await submit(store, b, 200, chunk=100)
    c_ids = await submit(store, c, 5)

    claimed = await claim(store, 30)
    per_account = {acc.id: [t.id for t in claimed if t.account_id == acc.id] for acc in (a, b, c)}
    assert per_account[c.id] == c_ids  # all 5 of C within the first 30
    assert per_account[a.id] == a_ids[: len(per_account[a.id])]
    assert per_account[b.id] == b_ids[: len(per_account[b.id])]
    # round-robin: A and B each got about a third (not A's 300 first)
    assert 10 <= len(per_account[a.id]) <= 15 and 10 <= len(per_account[b.id]) <= 15


async def test_an_idle_account_banks_no_priority(store: SqlStore) -> None:
    """B ran a little long ago; when it comes back with a large submission behind A's
    backlog, its tasks alternate with A's instead of all jumping ahead."""
    a = await new_account(store, credits=1_000, name="a")
    b = await new_account(store, credits=1_000, name="b")
    early = await submit(store, b, 3)
    done = await claim(store)
    assert [t.id for t in done] == early
    await store.finish_tasks("w1", [TaskFinish(t.id, success(NOW), "{}", False) for t in done], NOW)

    await submit(store, a, 200, chunk=100)
    # A's first claims move the head of the queue forward
    assert {t.account_id for t in await claim(store, 50)} == {a.id}
    await submit(store, b, 100, chunk=100)

    claimed = await claim(store, 20)
    from_b = sum(1 for t in claimed if t.account_id == b.id)
    assert 8 <= from_b <= 12, from_b


async def test_an_expired_lease_is_claimed_again_in_its_turn(store: SqlStore) -> None:
    a = await new_account(store, credits=100, name="a")
    ids = await submit(store, a, 3)
    (lost,) = await claim(store, 1, worker="dead")
    assert lost.id == ids[0]
    later = NOW + WORKER_LEASE_MS + 1
    again = await store.claim_tasks("w2", 2, WORKER_LEASE_MS, later, start_body)
    assert [t.id for t in again] == ids[:2]  # the oldest first, lease expired
    assert again[0].attempts == 2
