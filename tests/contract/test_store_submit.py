"""Submission: debit and task rows in one transaction; queries see one account only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from facelens.adapters.store.sql_store import SqlStore
from facelens.core.domain import DetectOptions, TaskStatus
from facelens.core.errors import InsufficientCredits

from .conftest import T0, new_account, new_task, submit_tasks


async def test_submit_debits_and_inserts_atomically(store: SqlStore) -> None:
    account = await new_account(store, credits=5)
    tasks = [new_task(n, user_id=n, timestamp="00:00:01") for n in range(3)]
    ids = await store.submit(account.id, "c" * 32, "https://client.example/cb", tasks, T0 + 2_000)

    assert len(ids) == 3 and ids == sorted(ids)
    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == 2 == await store.ledger_sum(account.id)

    views = await store.get_creation(account.id, "c" * 32)
    assert [v.id for v in views] == ids
    for n, view in enumerate(views):
        assert view.status is TaskStatus.QUEUED
        assert view.image_url == f"https://img.example/{n}.jpg"
        assert view.callback_params == {"user_id": n, "timestamp": "00:00:01"}
        assert view.options == DetectOptions(
            score_threshold=0.6, landmarks="5", attributes=("pose",)
        )
        assert view.created_at_ms == T0 + 2_000
        assert view.started_at_ms is None and view.result is None
        assert view.deliveries == ()


async def test_submit_returns_ids_in_submission_order(store: SqlStore) -> None:
    account = await new_account(store, credits=200)
    tasks = [new_task(n) for n in range(100)]
    ids = await store.submit(account.id, "order", "https://client.example/cb", tasks, T0 + 2_000)
    views = {v.id: v for v in await store.get_creation(account.id, "order")}
    assert [views[i].image_url for i in ids] == [t.image_url for t in tasks]


async def test_insufficient_balance_changes_nothing(store: SqlStore) -> None:
    account = await new_account(store, credits=2)
    with pytest.raises(InsufficientCredits) as raised:
        await submit_tasks(store, account, 3, creation_id="too-many")
    assert raised.value.needed == 3 and raised.value.balance == 2

    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == 2 == await store.ledger_sum(account.id)
    assert await store.get_creation(account.id, "too-many") == []
    assert (await store.usage(account.id)).tasks_by_status["queued"] == 0


async def test_concurrent_submits_accept_exactly_the_affordable(
    store: SqlStore, open_stores: Callable[[int], Awaitable[list[SqlStore]]]
) -> None:
    """20 submissions of one task race for 10 credits, through 4 stores (own engines and
    pools, like 4 processes) with 5 in flight on each."""
    account = await new_account(store, credits=10)
    stores = await open_stores(4)

    async def attempt(n: int) -> bool:
        try:
            await submit_tasks(stores[n % 4], account, 1, creation_id=f"race-{n}")
        except InsufficientCredits:
            return False
        return True

    accepted = await asyncio.gather(*(attempt(n) for n in range(20)))
    assert sum(accepted) == 10

    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == 0 == await store.ledger_sum(account.id)
    created = [await store.get_creation(account.id, f"race-{n}") for n in range(20)]
    assert [len(c) for c in created] == [1 if ok else 0 for ok in accepted]


async def test_concurrent_mixed_sizes_never_overdraw(store: SqlStore) -> None:
    account = await new_account(store, credits=10)
    sizes = [3, 1, 4, 1, 5, 2, 6, 2, 3, 1]
    results = await asyncio.gather(
        *(
            submit_tasks(store, account, size, creation_id=f"mix-{n}")
            for n, size in enumerate(sizes)
        ),
        return_exceptions=True,
    )
    spent = sum(size for size, r in zip(sizes, results, strict=True) if isinstance(r, list))
    assert all(isinstance(r, (list, InsufficientCredits)) for r in results)
    fresh = await store.get_account(account.id)
    assert fresh is not None
    assert fresh.credits == 10 - spent >= 0
    assert fresh.credits == await store.ledger_sum(account.id)
    # every rejected submission really did not fit in what was left at the end
    assert all(
        size > fresh.credits
        for size, r in zip(sizes, results, strict=True)
        if not isinstance(r, list)
    )


async def test_queries_see_only_the_callers_account(store: SqlStore) -> None:
    mine = await new_account(store, name="mine")
    theirs = await new_account(store, name="theirs")
    my_ids = await submit_tasks(store, mine, 2, creation_id="shared-looking-id")
    their_ids = await submit_tasks(store, theirs, 1, creation_id="theirs-only")

    view = await store.get_task(mine.id, my_ids[0])
    assert view is not None and view.id == my_ids[0]
    assert await store.get_task(mine.id, their_ids[0]) is None
    assert await store.get_task(theirs.id, my_ids[0]) is None
    assert await store.get_task(mine.id, 10_000_000) is None
    assert [v.id for v in await store.get_creation(mine.id, "shared-looking-id")] == my_ids
    assert await store.get_creation(theirs.id, "shared-looking-id") == []
    assert await store.get_creation(mine.id, "theirs-only") == []
