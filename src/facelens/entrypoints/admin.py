"""Administrative actions for the CLI: each opens the store, acts, closes it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import open_store
from facelens.application.accounts import AccountAdmin, CreatedAccount
from facelens.application.clock import SystemClock
from facelens.application.ports import Store
from facelens.core.domain import Account, ApiKeyInfo
from facelens.core.errors import NotFound
from facelens.entrypoints.config import Settings


@contextlib.asynccontextmanager
async def _admin(settings: Settings) -> AsyncIterator[tuple[Store, AccountAdmin]]:
    store = await open_store(settings.resolved_database_url)
    try:
        yield store, AccountAdmin(store, SystemClock())
    finally:
        await store.close()


async def upgrade_schema(settings: Settings) -> None:
    await upgrade(settings.resolved_database_url)


async def ensure_default_account(settings: Settings) -> CreatedAccount | None:
    async with _admin(settings) as (_, admin):
        return await admin.ensure_default_account(settings.default_account_credits)


async def create_account(settings: Settings, name: str, credits: int) -> CreatedAccount:
    async with _admin(settings) as (_, admin):
        return await admin.create(name, credits)


async def list_accounts(settings: Settings) -> list[tuple[Account, list[ApiKeyInfo]]]:
    async with _admin(settings) as (store, _):
        return [(a, await store.list_keys(a.id)) for a in await store.list_accounts()]


async def _resolve(store: Store, ref: str) -> Account:
    """The account with id `ref`, else the one named `ref`. Names need not be unique:
    a name two accounts share is refused rather than picking one of them."""
    accounts = await store.list_accounts()
    for account in accounts:
        if str(account.id) == ref:
            return account
    named = [account for account in accounts if account.name == ref]
    if len(named) > 1:
        ids = ", ".join(str(account.id) for account in named)
        raise NotFound(f"several accounts are named {ref!r} (ids {ids}): give the id")
    if named:
        return named[0]
    raise NotFound(f"no account {ref!r}")


async def create_key(settings: Settings, account_ref: str) -> str:
    async with _admin(settings) as (store, admin):
        return await admin.create_key((await _resolve(store, account_ref)).id)


async def revoke_key(settings: Settings, key: str) -> bool:
    async with _admin(settings) as (_, admin):
        return await admin.revoke_key(key)


async def add_credits(settings: Settings, account_ref: str, amount: int) -> int:
    async with _admin(settings) as (store, admin):
        return await admin.add_credits((await _resolve(store, account_ref)).id, amount)
