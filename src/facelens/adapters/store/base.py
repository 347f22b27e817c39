"""What every part of the store shares: the engine, read/write transactions, dialect bits.

Each `Store` method is exactly one `async with self._read()` or `self._write()` block
(or, on PostgreSQL, `self._single_statement()` around one statement that is a whole
transaction by itself), so "one method, one transaction" is visible in the code. All
translate connection trouble into `StoreUnavailable` (see `engine.translate_errors`).

The statements on the hot paths (claims, finish, attempts) are built once per dialect
(`functools.cache`) with bind parameters: constructing a SQLAlchemy statement costs
more client CPU than running it, and the queue must sustain ~1000 claims/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from facelens.adapters.store.engine import WRITE_OPTION, is_postgres, translate_errors

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Record = TypeVar("Record", bound=DataclassInstance)
else:
    Record = TypeVar("Record")

NOW = sa.bindparam("now", type_=sa.BigInteger)
"""The `now` parameter (epoch ms) of the claim statements."""


class StoreBase:
    """Owns the engine. The accounts, tasks and deliveries parts build on it."""

    def __init__(self, engine: AsyncEngine, *, notify: bool = True) -> None:
        self._engine = engine
        self._postgres = is_postgres(engine)
        self._notify = notify
        """PostgreSQL: submissions NOTIFY the listening workers (see tasks.py)."""
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        # Reads that take several queries (a task, its deliveries, their attempts) must
        # see one snapshot: SQLite's deferred BEGIN gives that; PostgreSQL's default
        # READ COMMITTED takes a snapshot per statement, REPEATABLE READ one per
        # transaction (and costs nothing for a read-only one).
        self._reader = (
            engine.execution_options(isolation_level="REPEATABLE READ")
            if self._postgres
            else engine
        )
        # SQLite has one writer at a time anyway. Queueing this process's writers on an
        # asyncio lock is fair (FIFO) and avoids the busy handler's sleep-and-poll;
        # other processes still wait on BEGIN IMMEDIATE + busy_timeout.
        self._write_lock: asyncio.Lock | None = None if self._postgres else asyncio.Lock()
        # PostgreSQL runs a single statement atomically by itself; without BEGIN and
        # COMMIT it is one round trip instead of three (asyncpg sends each separately).
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot on both databases)."""
        with translate_errors():
            async with self._reader.begin() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with translate_errors():
            if self._write_lock is None:
                async with self._engine.begin() as conn:
                    yield conn
            else:
                async with self._write_lock, self._writer.begin() as conn:
                    yield conn

    @contextlib.asynccontextmanager
    async def _single_statement(self) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL: a connection for exactly ONE statement, which is its own
        transaction (autocommit). Use it only for a statement that does all of a
        method's writes (e.g. with data-modifying CTEs); never run two in it."""
        if not self._postgres:
            raise RuntimeError("single-statement transactions are for PostgreSQL")
        with translate_errors():
            async with self._autocommit.connect() as conn:
                yield conn


def insert_ignore(table: sa.Table, postgres: bool) -> postgresql.Insert | sqlite.Insert:
    """`INSERT … ON CONFLICT (task_id, process_status) DO NOTHING`-ready insert for this
    database (both spell it the same, but each dialect has its own construct)."""
    return postgresql.insert(table) if postgres else sqlite.insert(table)


def skip_locked(query: sa.Select[Any], postgres: bool, *of: sa.Table) -> sa.Select[Any]:
    """`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent claimers take disjoint rows
    without waiting; nothing on SQLite, whose writers are serialized already."""
    if not postgres:
        return query
    return query.with_for_update(skip_locked=True, of=list(of) or None)


def for_update(query: sa.Select[Any], postgres: bool) -> sa.Select[Any]:
    """`FOR UPDATE` on PostgreSQL: lock the rows a transaction is about to change, so a
    concurrent claim (SKIP LOCKED) passes them by; nothing on SQLite (one writer)."""
    return query.with_for_update() if postgres else query


def materialized(cte: sa.CTE, postgres: bool) -> sa.CTE:
    """Make PostgreSQL run a locking CTE exactly once (never inline it)."""
    return cte.prefix_with("MATERIALIZED") if postgres else cte


def claim_statement(table: sa.Table, due: sa.Select[Any], postgres: bool) -> sa.Update:
    """The claim shared by the task queue and the callback outbox: an UPDATE of the rows
    whose ids are the first `:limit` of `due` (ordered by the caller), picked by a CTE
    with `FOR UPDATE OF table SKIP LOCKED` on PostgreSQL, so concurrent claimers take
    disjoint rows without waiting; MATERIALIZED, so the locking query runs exactly
    once. The caller adds `.values(...)` and `.returning(...)`."""
    limited = due.limit(sa.bindparam("limit", type_=sa.Integer))
    picked = materialized(skip_locked(limited, postgres, table).cte("picked"), postgres)
    return sa.update(table).where(table.c.id.in_(sa.select(picked.c.id)))


def record(cls: type[Record], row: sa.Row[Any]) -> Record:
    """A domain dataclass from a row that has a column for each of its fields (by
    name; other columns are ignored), for records stored as they are."""
    columns = row._mapping
    return cls(**{field.name: columns[field.name] for field in dataclasses.fields(cls)})


async def insert_row(conn: AsyncConnection, table: sa.Table, **values: Any) -> sa.Row[Any]:
    """Insert one row; the row as stored (with its id)."""
    return (await conn.execute(sa.insert(table).values(**values).returning(*table.c))).one()
