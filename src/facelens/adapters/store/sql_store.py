"""`SqlStore`: the `Store` port on SQLAlchemy Core, for SQLite and PostgreSQL.

The protocol is implemented by concern in sibling modules (accounts, tasks,
finishing, deliveries, queries) that share one engine through `StoreBase`; this class only
composes them and adds the lifecycle methods. Schema creation is not done here: run
`facelens.adapters.store.migrate.upgrade(url)` (the `facelens db upgrade` command).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from facelens.adapters.store.accounts import AccountStore
from facelens.adapters.store.deliveries import DeliveryStore
from facelens.adapters.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    create_engine,
    translate_errors,
)
from facelens.adapters.store.finishing import FinishStore
from facelens.adapters.store.operations import OperationsStore
from facelens.adapters.store.queries import QueryStore
from facelens.adapters.store.retention import RetentionStore
from facelens.adapters.store.tasks import TaskStore
from facelens.adapters.store.video import VideoSegmentStore


class SqlStore(
    AccountStore,
    TaskStore,
    FinishStore,
    DeliveryStore,
    QueryStore,
    OperationsStore,
    VideoSegmentStore,
    RetentionStore,
):
    """Accounts, keys, ledger, the task queue and the callback outbox in one database.

    Every method is one transaction and raises `StoreUnavailable` when the database
    cannot be reached.
    """

    def __init__(self, engine: AsyncEngine, *, notify: bool = True) -> None:
        super().__init__(engine, notify=notify)

    async def ping(self) -> None:
        """`SELECT 1`: raises StoreUnavailable when the database is unreachable."""
        async with self._read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection (checkpoints SQLite's WAL on the last one)."""
        await self._engine.dispose()


async def open_store(
    database_url: str,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    pool_size: int = 10,
    notify: bool = True,
    pre_ping: bool = True,
) -> SqlStore:
    """A store on `sqlite+aiosqlite:///path` or `postgresql+asyncpg://…`.

    Connects lazily, so a process can start while the database is down (readiness and
    the workers' back-off report it). The schema must have been migrated. `notify`:
    on PostgreSQL, each submission NOTIFYs the workers' LISTEN connections. `pre_ping`:
    see `engine.create_engine` (workers turn it off).
    """
    with translate_errors():  # e.g. the SQLite directory cannot be created
        engine = create_engine(
            database_url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size, pre_ping=pre_ping
        )
    return SqlStore(engine, notify=notify)
