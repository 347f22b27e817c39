"""The task queue: submit, claim under a lease, renew, finish, release.

A task is claimable when it is queued, or running with an expired lease (its worker
died). Claiming is one statement that picks and updates at once:

    WITH picked AS MATERIALIZED (
        SELECT id FROM tasks
        WHERE status IN ('queued', 'running')
          AND (status = 'queued' OR lease_until < :now)
        ORDER BY fair_tag, id LIMIT :limit     -- fair across accounts: fairness.py
        FOR UPDATE SKIP LOCKED                 -- PostgreSQL only
    )
    UPDATE tasks SET status = 'running', worker_id = :worker, lease_until = :until,
                     attempts = attempts + 1, started_at_ms = coalesce(started_at_ms, :now)
    WHERE id IN (SELECT id FROM picked)
    RETURNING …

On PostgreSQL, SKIP LOCKED lets any number of workers claim at once without waiting on
each other or taking the same row; the CTE is MATERIALIZED so the locking subquery runs
exactly once. On SQLite the writers are serialized by BEGIN IMMEDIATE, so no lock
clause is needed. The start callback rows are inserted by the same transaction, one
batched INSERT … ON CONFLICT DO NOTHING, so a re-claimed task never gets a second one.

Finishing is in `finishing.py`. Lease renewal and release lock their rows in id order,
as finishing does, so a worker's renewal and its own finish never deadlock.

On PostgreSQL a submission also runs `pg_notify('facelens_tasks', '')` in its
transaction: the server delivers it on commit (never for a rolled-back submission) to
every worker process LISTENing (`pg_notify.py`), so idle workers on any machine start
at once instead of at their next poll.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from facelens.adapters.store.accounts import debit, ledger_row, write_ledger
from facelens.adapters.store.base import NOW, StoreBase, claim_statement, for_update
from facelens.adapters.store.deliveries import insert_delivery_statement, new_delivery
from facelens.adapters.store.fairness import reserve_tags
from facelens.adapters.store.tables import QUEUE_STATUSES
from facelens.adapters.store.tables import tasks as _tasks
from facelens.application.ports import StartBody
from facelens.core.domain import ClaimedTask, DetectOptions, NewTask, ProcessStatus, TaskStatus
from facelens.core.video import Sampling

TASKS_CHANNEL = "facelens_tasks"
"""The PostgreSQL NOTIFY channel a submission signals and idle workers LISTEN on."""

_NOTIFY_TASKS = sa.select(sa.func.pg_notify(TASKS_CHANNEL, ""))

CLAIMED_COLUMNS = (
    _tasks.c.id,
    _tasks.c.creation_id,
    _tasks.c.account_id,
    _tasks.c.image_url,
    _tasks.c.callback_url,
    _tasks.c.callback_params,
    _tasks.c.options,
    _tasks.c.attempts,
    _tasks.c.started_at_ms,
    _tasks.c.video,
    _tasks.c.created_at_ms,
)


def claimed_task(row: Any) -> ClaimedTask:
    """A task row (at least `CLAIMED_COLUMNS`) as the worker gets it, image or video."""
    return ClaimedTask(
        id=row.id,
        creation_id=row.creation_id,
        account_id=row.account_id,
        image_url=row.image_url,
        callback_url=row.callback_url,
        callback_params=dict(row.callback_params or {}),
        options=DetectOptions.from_json(row.options or {}),
        attempts=row.attempts,
        started_at_ms=row.started_at_ms,
        video=None if row.video is None else Sampling.from_json(row.video),
        created_at_ms=row.created_at_ms,
    )


HELD_BY_WORKER = sa.and_(
    _tasks.c.worker_id == sa.bindparam("worker"),
    _tasks.c.status == TaskStatus.RUNNING.value,
)


@functools.cache
def _claim_statement(postgres: bool) -> sa.Update:
    """The claim in the module docstring, for one dialect. Parameters: now, limit,
    worker, until."""
    claimable = (
        sa.select(_tasks.c.id)
        .where(
            # Literal values, not parameters, so that even a generic prepared plan can
            # prove the partial index ix_tasks_claimable applies.
            _tasks.c.status.in_([sa.literal_column(f"'{s}'") for s in QUEUE_STATUSES]),
            sa.or_(_tasks.c.status == TaskStatus.QUEUED.value, _tasks.c.lease_until < NOW),
        )
        # Fair across accounts (fairness.py): ix_tasks_fair_claimable's order.
        .order_by(_tasks.c.fair_tag, _tasks.c.id)
    )
    return (
        claim_statement(_tasks, claimable, postgres)
        .values(
            status=TaskStatus.RUNNING.value,
            worker_id=sa.bindparam("worker"),
            lease_until=sa.bindparam("until", type_=sa.BigInteger),
            attempts=_tasks.c.attempts + 1,
            started_at_ms=sa.func.coalesce(_tasks.c.started_at_ms, NOW),
        )
        .returning(*CLAIMED_COLUMNS)
    )


def ids_in(postgres: bool) -> sa.ColumnElement[bool]:
    """`id` among the bound list `ids`: `= ANY(:ids)` (one array parameter, so one
    prepared statement whatever the batch size) on PostgreSQL, an expanding IN on
    SQLite."""
    if postgres:
        return _tasks.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger)))
    return _tasks.c.id.in_(sa.bindparam("ids", expanding=True))


@functools.cache
def lock_held_statement(postgres: bool) -> sa.Select[Any]:
    """The tasks among `ids` that `worker` still holds, locked in id order (PostgreSQL;
    SQLite's writer lock is enough). Parameters: ids, worker."""
    return for_update(
        sa.select(_tasks.c.id, _tasks.c.account_id, _tasks.c.creation_id)
        .where(ids_in(postgres), HELD_BY_WORKER)
        .order_by(_tasks.c.id),
        postgres,
    )


def _held_locked_in_order(postgres: bool) -> sa.ColumnElement[bool]:
    """The held tasks among `ids` as an UPDATE's WHERE, taking the row locks in id order
    on PostgreSQL like `lock_held_statement` does, so renewals, releases and finishes
    of one worker never deadlock each other. Parameters: ids, worker."""
    if not postgres:
        return sa.and_(ids_in(False), HELD_BY_WORKER)
    held = lock_held_statement(True).with_only_columns(_tasks.c.id)
    return sa.and_(_tasks.c.id.in_(held.scalar_subquery()), HELD_BY_WORKER)


@functools.cache
def _renew_statement(postgres: bool) -> sa.Update:
    """Parameters: ids, worker, until."""
    return (
        sa.update(_tasks)
        .where(_held_locked_in_order(postgres))
        .values(lease_until=sa.bindparam("until", type_=sa.BigInteger))
    )


@functools.cache
def _release_statement(postgres: bool) -> sa.Update:
    """Back to the queue; the claim is not counted as an attempt. Parameters: ids,
    worker."""
    return (
        sa.update(_tasks)
        .where(_held_locked_in_order(postgres))
        .values(
            status=TaskStatus.QUEUED.value,
            worker_id=None,
            lease_until=None,
            attempts=_tasks.c.attempts - 1,
        )
    )


class TaskStore(StoreBase):
    """The submission and task-queue part of the `Store` protocol."""

    async def submit(
        self,
        account_id: int,
        creation_id: str,
        callback_url: str,
        tasks: Sequence[NewTask],
        now_ms: int,
    ) -> list[int]:
        """Debit len(tasks) credits, write the ledger row and insert the tasks, in one
        transaction; InsufficientCredits (nothing written) when the balance is short.
        Ids come back in submission order (insertmanyvalues sorts RETURNING rows by
        parameter order on both databases)."""
        if not tasks:
            return []
        rows = [
            {
                "creation_id": creation_id,
                "account_id": account_id,
                "image_url": task.image_url,
                "callback_url": callback_url,
                "callback_params": task.callback_params,
                "options": task.options.to_json(),
                "status": TaskStatus.QUEUED.value,
                "attempts": 0,
                "created_at_ms": now_ms,
                "error_code": "",
                "error_info": "",
                "video": None if task.video is None else task.video.to_json(),
            }
            for task in tasks
        ]
        cost = sum(task.credits for task in tasks)  # a video reserves its max_frames
        async with self._write() as conn:
            await debit(conn, account_id, cost)
            first_tag = await reserve_tags(conn, self._postgres, account_id, len(rows))
            for offset, row in enumerate(rows):
                row["fair_tag"] = first_tag + offset
            await write_ledger(
                conn, ledger_row(account_id, -cost, "submit", now_ms, creation_id=creation_id)
            )
            result = await conn.execute(
                sa.insert(_tasks).returning(_tasks.c.id, sort_by_parameter_order=True), rows
            )
            ids = [int(task_id) for task_id in result.scalars()]
            if self._postgres and self._notify:
                await conn.execute(_NOTIFY_TASKS)
            return ids

    async def claim_tasks(
        self, worker_id: str, limit: int, lease_ms: int, now_ms: int, start_body: StartBody
    ) -> list[ClaimedTask]:
        """Claim up to `limit` tasks, oldest first, and insert their start callbacks."""
        if limit <= 0:
            return []
        async with self._write() as conn:
            rows = await conn.execute(
                _claim_statement(self._postgres),
                {"now": now_ms, "limit": limit, "worker": worker_id, "until": now_ms + lease_ms},
            )
            claimed = sorted((claimed_task(row) for row in rows), key=_id)
            if claimed:
                starts = [
                    new_delivery(task.id, ProcessStatus.STARTED, start_body(task), now_ms)
                    for task in claimed
                ]
                await conn.execute(insert_delivery_statement(self._postgres), starts)
        return claimed

    async def renew_leases(self, worker_id: str, task_ids: Sequence[int], until_ms: int) -> int:
        """Extend the leases this worker still holds; how many it still holds."""
        if not task_ids:
            return 0
        async with self._write() as conn:
            result = await conn.execute(
                _renew_statement(self._postgres),
                {"ids": list(task_ids), "worker": worker_id, "until": until_ms},
            )
        return int(result.rowcount)

    async def release_tasks(self, worker_id: str, task_ids: Sequence[int]) -> int:
        """Give unfinished tasks back to the queue (graceful stop). The claim is not
        counted as an attempt, and the start callback already written stays (the task
        did start; the next worker keeps the first start time)."""
        if not task_ids:
            return 0
        async with self._write() as conn:
            result = await conn.execute(
                _release_statement(self._postgres), {"ids": list(task_ids), "worker": worker_id}
            )
        return int(result.rowcount)


def _id(task: ClaimedTask) -> int:
    return task.id
