"""Accounts, keys and credits: the balance always equals the ledger and never goes < 0."""

from __future__ import annotations

import asyncio

import pytest

from facelens.adapters.store.sql_store import SqlStore
from facelens.core.errors import InsufficientCredits, NotFound

from .conftest import T0, new_account, submit_tasks


async def test_create_account_writes_opening_ledger_row(store: SqlStore) -> None:
    account = await store.create_account("acme", 25, "whsec_x", now_ms=T0 + 7)
    assert account.credits == 25
    assert await store.get_account(account.id) == account
    assert await store.ledger_sum(account.id) == 25

    empty = await store.create_account("empty", 0, "whsec_y", now_ms=T0 + 8)
    assert await store.ledger_sum(empty.id) == 0
    assert [a.name for a in await store.list_accounts()] == ["acme", "empty"]
    assert await store.count_accounts() == 2
    assert await store.get_account(10_000) is None


async def test_charge_and_add_credits_are_conditional(store: SqlStore) -> None:
    account = await new_account(store, credits=3)
    assert await store.charge(account.id, 2, "detect", now_ms=T0 + 10) == 1
    with pytest.raises(InsufficientCredits) as raised:
        await store.charge(account.id, 2, "detect", now_ms=T0 + 11)
    assert raised.value.balance == 1
    assert await store.add_credits(account.id, 10, "admin", now_ms=T0 + 12) == 11
    with pytest.raises(InsufficientCredits):
        await store.add_credits(account.id, -12, "admin", now_ms=T0 + 13)
    assert await store.add_credits(account.id, -11, "admin", now_ms=T0 + 14) == 0

    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == 0
    assert await store.ledger_sum(account.id) == 0
    with pytest.raises(NotFound):
        await store.charge(10_000, 1, "detect", now_ms=T0 + 15)
    with pytest.raises(NotFound):
        await store.add_credits(10_000, 1, "admin", now_ms=T0 + 15)


async def test_concurrent_charges_never_overdraw(store: SqlStore) -> None:
    account = await new_account(store, credits=5)

    async def one() -> bool:
        try:
            await store.charge(account.id, 1, "detect", now_ms=T0 + 20)
        except InsufficientCredits:
            return False
        return True

    accepted = await asyncio.gather(*(one() for _ in range(12)))
    assert sum(accepted) == 5
    fresh = await store.get_account(account.id)
    assert fresh is not None and fresh.credits == 0 == await store.ledger_sum(account.id)


async def test_key_lookup_and_revocation(store: SqlStore) -> None:
    acme = await new_account(store, name="acme")
    other = await new_account(store, name="other")
    first = await store.add_key(acme.id, "fl_aaaaaaaa", "a" * 64, now_ms=T0 + 30)
    await store.add_key(acme.id, "fl_bbbbbbbb", "b" * 64, now_ms=T0 + 31)
    await store.add_key(other.id, "fl_cccccccc", "c" * 64, now_ms=T0 + 32)
    assert first.prefix == "fl_aaaaaaaa" and first.revoked_at_ms is None

    found = await store.account_for_key("a" * 64)
    assert found is not None and found.id == acme.id
    found = await store.account_for_key("c" * 64)
    assert found is not None and found.id == other.id
    assert await store.account_for_key("d" * 64) is None

    assert await store.revoke_key("fl_aaaaaaaa", now_ms=T0 + 40) is True
    assert await store.revoke_key("fl_aaaaaaaa", now_ms=T0 + 41) is False  # already revoked
    assert await store.revoke_key("fl_zzzzzzzz", now_ms=T0 + 42) is False
    assert await store.account_for_key("a" * 64) is None
    assert await store.account_for_key("b" * 64) is not None

    keys = await store.list_keys(acme.id)
    assert [(k.prefix, k.revoked_at_ms) for k in keys] == [
        ("fl_aaaaaaaa", T0 + 40),
        ("fl_bbbbbbbb", None),
    ]


async def test_usage_counts_tasks_and_ledger(store: SqlStore) -> None:
    account = await new_account(store, credits=10)
    await submit_tasks(store, account, 3)
    await store.charge(account.id, 1, "detect", now_ms=T0 + 50)
    await store.add_credits(account.id, 1, "refund", now_ms=T0 + 51)
    usage = await store.usage(account.id)
    assert usage.tasks_by_status == {"queued": 3, "running": 0, "succeeded": 0, "failed": 0}
    assert usage.credits_charged == 4
    assert usage.credits_refunded == 1
