"""Retention: delete finished tasks older than a cut-off, with everything that hangs
off them, a small batch per transaction.

A task is purgeable once it is finished (succeeded or failed), ended before the
cut-off, and none of its callbacks is still pending (a delivery being retried keeps
its task, whatever its age). The rows that reference a purged task are deleted with
it, children first, in the same transaction. Which tables those are is read from the
schema's foreign keys (`tables.metadata`), so a table added later with a foreign key
to `tasks` (or to one of its children) is covered without a change here. The ledger
has no foreign key to tasks on purpose: it stays, so every balance still equals the
sum of its ledger, and its `task_id` values simply point at tasks that are gone.

One batch is one transaction that holds locks for a few milliseconds: on PostgreSQL
the batch's task rows are taken `FOR UPDATE SKIP LOCKED` (two purging processes take
disjoint batches; claims never touch finished rows), on SQLite it is one short
BEGIN IMMEDIATE, so claims wait at most one batch. The batch is picked in `ended_at_ms`
order through `ix_tasks_ended_at_ms` (migration 0005): nothing to purge costs one
index probe.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from facelens.adapters.store.base import StoreBase, skip_locked
from facelens.adapters.store.tables import deliveries, metadata
from facelens.adapters.store.tables import tasks as _tasks

FINISHED = ("succeeded", "failed")
PENDING_DELIVERY = "pending"


def _ids(column: sa.ColumnElement[Any], postgres: bool) -> sa.ColumnElement[bool]:
    """`column` among the bound list `ids` (one array parameter on PostgreSQL)."""
    if postgres:
        return column == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger)))
    return column.in_(sa.bindparam("ids", expanding=True))


def _children(table: sa.Table) -> list[tuple[sa.Table, sa.Column[Any], sa.Column[Any]]]:
    """(child table, its foreign-key column, the column of `table` it refers to)."""
    found = []
    for child in metadata.sorted_tables:
        for fk in child.foreign_keys:
            if fk.column.table is table and child is not table:
                found.append((child, fk.parent, fk.column))
    return found


def _deletes(table: sa.Table, where: sa.ColumnElement[bool], depth: int = 0) -> list[sa.Delete]:
    """DELETEs for the rows of `table` matching `where` and, first, for every row that
    references them (recursively): children before parents."""
    if depth > 8:
        raise RuntimeError(f"foreign keys nest too deep below {table.name}")
    statements: list[sa.Delete] = []
    for child, fk_column, referred in _children(table):
        child_where = fk_column.in_(sa.select(referred).where(where).scalar_subquery())
        statements += _deletes(child, child_where, depth + 1)
    statements.append(sa.delete(table).where(where))
    return statements


@functools.cache
def purge_statements(postgres: bool) -> tuple[sa.Delete, ...]:
    """Delete the tasks whose ids are bound as `ids`, and every row depending on them.
    A child of `tasks` is matched on its own foreign-key column (an index probe), not
    through a subquery on tasks."""
    statements: list[sa.Delete] = []
    for child, fk_column, referred in _children(_tasks):
        if referred is not _tasks.c.id:
            raise RuntimeError(f"{child.name} refers to tasks.{referred.name}, not tasks.id")
        statements += _deletes(child, _ids(fk_column, postgres), 1)
    statements.append(sa.delete(_tasks).where(_ids(_tasks.c.id, postgres)))
    return tuple(statements)


@functools.cache
def _pick_statement(postgres: bool) -> sa.Select[Any]:
    """Up to `limit` purgeable task ids, oldest end first. Parameters: before, limit."""
    # NOT IN over the (few) pending deliveries, read once per batch: a correlated NOT
    # EXISTS made SQLite probe ix_deliveries_status_next_attempt_at for every candidate.
    pending = sa.select(deliveries.c.task_id).where(
        deliveries.c.status == sa.literal_column(f"'{PENDING_DELIVERY}'")
    )
    query = (
        sa.select(_tasks.c.id)
        .where(
            _tasks.c.ended_at_ms < sa.bindparam("before", type_=sa.BigInteger),
            _tasks.c.status.in_([sa.literal_column(f"'{s}'") for s in FINISHED]),
            _tasks.c.id.not_in(pending),
        )
        .order_by(_tasks.c.ended_at_ms)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    return skip_locked(query, postgres, _tasks)


class RetentionStore(StoreBase):
    """The retention part of the store."""

    async def purge_finished(self, before_ms: int, limit: int) -> int:
        """Delete up to `limit` finished tasks that ended before `before_ms` (and have
        no pending callback), with their deliveries, delivery attempts and any other
        dependent rows, in one transaction; how many tasks went."""
        if limit <= 0:
            return 0
        async with self._write() as conn:
            ids = list(
                (
                    await conn.execute(
                        _pick_statement(self._postgres), {"before": before_ms, "limit": limit}
                    )
                ).scalars()
            )
            if not ids:
                return 0
            for statement in purge_statements(self._postgres):
                await conn.execute(statement, {"ids": ids})
        return len(ids)
