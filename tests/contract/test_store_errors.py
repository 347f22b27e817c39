"""Unreachable or locked databases raise StoreUnavailable; bugs stay loud."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import SqlStore, open_store
from facelens.core.errors import StoreUnavailable

from .conftest import T0, new_account


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_ping(store: SqlStore) -> None:
    await store.ping()


async def test_unreachable_postgres_is_store_unavailable() -> None:
    store = await open_store(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/none")
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.get_account(1)
    finally:
        await store.close()


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_unknown_postgres_database_is_store_unavailable(database_url: str) -> None:
    url = sa.engine.make_url(database_url).set(database="facelens_no_such_db")
    store = await open_store(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


async def test_sqlite_locked_past_busy_timeout_is_store_unavailable(tmp_path: Path) -> None:
    """Another process holding the write lock longer than the busy timeout."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'locked.db'}"
    await upgrade(url)
    holder = await open_store(url)
    waiter = await open_store(url, busy_timeout_ms=200)
    try:
        account = await new_account(holder)
        async with holder.engine.connect() as conn, conn.begin() as transaction:
            # an uncommitted write holds SQLite's write lock until rollback
            await conn.exec_driver_sql("UPDATE accounts SET name = name")
            with pytest.raises(StoreUnavailable, match="locked"):
                await waiter.charge(account.id, 1, "detect", now_ms=T0 + 1)
            # readers are not blocked by a writer (WAL)
            assert await waiter.get_account(account.id) is not None
            await transaction.rollback()
        assert await waiter.charge(account.id, 1, "detect", now_ms=T0 + 2) == 99
    finally:
        await holder.close()
        await waiter.close()


async def test_sqlite_creates_the_parent_directory(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'facelens.db'}")
    try:
        await store.ping()
    finally:
        await store.close()
    assert (tmp_path / "a" / "b" / "facelens.db").exists()


async def test_integrity_errors_are_not_disguised(store: SqlStore) -> None:
    account = await new_account(store)
    await store.add_key(account.id, "fl_aaaaaaaa", "a" * 64, now_ms=T0 + 1)
    with pytest.raises(sa.exc.IntegrityError):
        await store.add_key(account.id, "fl_aaaaaaaa", "a" * 64, now_ms=T0 + 2)


async def test_missing_schema_is_not_disguised(tmp_path: Path) -> None:
    """An unmigrated database is a deployment bug, not a network blip to retry."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bare.db'}")
    try:
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            await store.count_accounts()
    finally:
        await store.close()
