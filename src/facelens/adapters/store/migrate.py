"""Schema migrations: Alembic, driven from code (no alembic.ini anywhere).

The revision files live inside the package (`migrations/versions`), so an installed
facelens can migrate its own database: `facelens db upgrade` calls `upgrade(url)`.
The same revision files serve SQLite and PostgreSQL.

`upgrade` is safe to run from several processes at once (e.g. every node of a
deployment on start): the whole upgrade is one transaction that first takes a lock, a
transaction-scoped advisory lock on PostgreSQL and the write lock (BEGIN IMMEDIATE) on
SQLite, so the second process waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from facelens.adapters.store.engine import (
    WRITE_OPTION,
    create_engine,
    is_postgres,
    translate_errors,
)
from facelens.core.errors import StoreUnavailable
from facelens.core.retry import Backoff

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SQLITE_TRIES = 6

_ADVISORY_LOCK_KEY = 0x666C_6D69_6772  # "flmigr": any constant shared by all facelens nodes


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic `Config` pointing at the packaged migrations.

    The URL goes in `attributes`, not in the ini options, so a password holding `%`
    survives (ini options are interpolated).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def current_head() -> str:
    """The newest revision id this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at `database_url` to `revision` (default: head).

    Raises StoreUnavailable when the database cannot be reached.
    """
    engine = create_engine(database_url)
    config = alembic_config(database_url)
    backoff = Backoff(first_s=0.1, max_s=2.0)
    try:
        for delay in (*backoff.delays(_SQLITE_TRIES), None):
            try:
                await _upgrade_once(engine, config, revision)
                return
            except StoreUnavailable:
                # SQLite answers "database is locked" at once, without waiting on the
                # busy timeout, when two fresh connections race to switch a new file to
                # WAL (each holds a read lock and wants the write lock: one must yield).
                # The loser simply starts again; PostgreSQL queues on the advisory lock.
                if delay is None or is_postgres(engine):
                    raise
                await asyncio.sleep(delay)
    finally:
        await engine.dispose()


async def _upgrade_once(engine: AsyncEngine, config: Config, revision: str) -> None:
    with translate_errors():
        async with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
            if is_postgres(engine):
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _ADVISORY_LOCK_KEY},
                )
            await conn.run_sync(_upgrade_on, config, revision)


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None for an empty database); lets a process
    check at start that the schema is at `current_head()`."""
    engine = create_engine(database_url)
    try:
        with translate_errors():
            async with engine.connect() as conn:
                return await conn.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _upgrade_on(connection: sa.Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _revision_of(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
