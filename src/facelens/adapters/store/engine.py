"""The one module that knows the database drivers (aiosqlite, asyncpg).

It turns a database URL into an `AsyncEngine` set up for a queue workload, and says
which driver errors mean "the database cannot be reached right now" (`StoreUnavailable`:
callers answer 100099 and back off) as opposed to bugs, which must stay loud.

SQLite setup, per connection:

* `journal_mode=WAL`: readers never block the writer nor the other way round;
* `busy_timeout`: a writer that finds the database locked waits instead of failing;
* `foreign_keys=ON`: SQLite ignores foreign keys unless asked;
* `synchronous=NORMAL`: the usual WAL setting. A process crash loses nothing; a power
  cut may lose the last commits, never consistency (debit and tasks go together);
* SQLAlchemy, not the sqlite3 module, emits BEGIN (SQLAlchemy's documented recipe for
  serializable transactions), and write transactions begin with `BEGIN IMMEDIATE`:
  they take the write lock up front, so two writers queue on the busy timeout instead of
  one failing with "database is locked" when it upgrades a read lock in WAL mode.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from facelens.core.errors import StoreUnavailable

WRITE_OPTION = "facelens_write"
"""Execution option that makes a SQLite transaction begin with BEGIN IMMEDIATE."""

DEFAULT_BUSY_TIMEOUT_MS = 10_000

DEFAULT_CONNECT_TIMEOUT_S = 5.0
"""PostgreSQL: how long opening a connection may take. asyncpg's own default is 60 s,
so a server that accepts TCP but does not answer (overloaded, half-dead, a network
black hole) would hold an API request for a minute instead of answering 100099."""

_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
}
"""Primary SQLite result codes of an unusable database, as opposed to SQLITE_ERROR
("no such table", syntax errors), which are bugs."""

_PG_UNAVAILABLE_CLASSES = ("08", "53", "57", "58", "28")
"""SQLSTATE classes: connection exception, insufficient resources, operator
intervention (shutdown, starting up), system error, invalid authorization."""

_PG_UNAVAILABLE_STATES = {"3D000", "40001", "40P01", "55P03"}
"""Unknown database, serialization failure, deadlock, lock not available: retryable."""


def normalize_url(database_url: str) -> URL:
    """Accept the short spellings too: `sqlite:///…` and `postgres(ql)://…` get the
    async driver this module uses."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL scheme {url.drivername!r}")


def create_engine(
    database_url: str,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    pool_size: int = 10,
    max_overflow: int = 10,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    pre_ping: bool = True,
) -> AsyncEngine:
    """An engine for `sqlite+aiosqlite:///path` or `postgresql+asyncpg://…`.

    Connects lazily. For SQLite the parent directory of the file is created, so a fresh
    data dir works out of the box. On PostgreSQL a connection that cannot be opened
    within `connect_timeout_s` is a `StoreUnavailable` (TimeoutError), like a refused one.

    `pre_ping` (PostgreSQL): test each pooled connection with a round trip before
    using it, so a restarted server does not cost a failed request. The API wants
    that. A worker does not: it retries after `StoreUnavailable` anyway (a broken
    connection fails once, and SQLAlchemy then replaces every pooled connection of
    that generation), and the ping was an extra round trip and ~1 ms of client CPU
    on every queue transaction, a third of the cost of a small claim.
    """
    url = normalize_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        connect_args={"timeout": connect_timeout_s},
    )


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from emitting BEGIN itself; `_on_begin` does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be used now (retry later), False for
    errors that point at a bug or bad data (integrity, syntax, missing table)."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return (code & 0xFF) in _SQLITE_UNAVAILABLE
        state = getattr(orig, "sqlstate", None)
        if isinstance(state, str):
            return state in _PG_UNAVAILABLE_STATES or state[:2] in _PG_UNAVAILABLE_CLASSES
        return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
    return isinstance(
        exc,
        (
            OSError,  # connection refused, reset, DNS, timeouts (TimeoutError is an OSError)
            sa.exc.TimeoutError,  # every pooled connection busy for pool_timeout
            sa.exc.DisconnectionError,
        ),
    )


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise "database unreachable" errors as `StoreUnavailable`; others unchanged."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise StoreUnavailable(f"database unavailable: {_describe(exc)}") from exc
        raise


def _describe(exc: BaseException) -> str:
    """A one-line reason without SQL text or parameters (they may hold user data)."""
    if isinstance(exc, sa.exc.DBAPIError):
        return (
            f"{type(exc.orig).__name__}: {str(exc.orig).splitlines()[0] if str(exc.orig) else ''}"
        )
    return f"{type(exc).__name__}: {exc}"
