"""Finishing tasks: store each outcome, schedule its complete callback, refund a
failure, only for tasks the worker still holds; several tasks per transaction.

A worker records its outcomes in batches (`finish_tasks`) because a commit costs the
same for one task or ten. The check stays per task: the rows of the batch this worker
still holds (status running, its worker_id) are locked first, in id order (as lease
renewal locks them, so the two never deadlock), and only those are written. A task
whose lease expired and that another worker took is not among them: skipped, nothing
written, and the caller learns it from the returned ids.

PostgreSQL does it all in ONE statement (data-modifying CTEs: lock, update, insert
the complete deliveries, credit, ledger), which is atomic on its own, so it runs
without BEGIN/COMMIT: one round trip per batch instead of five. On loopback each
round trip costs more client CPU than the SQL does, and this was half of a task's
queue cost. SQLite runs the same steps as separate statements in one BEGIN IMMEDIATE
transaction (in process, no round trips to save).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from facelens.adapters.store.accounts import credit, ledger_row, write_ledger
from facelens.adapters.store.base import StoreBase
from facelens.adapters.store.deliveries import (
    INSERT_NEW_DELIVERIES_PG,
    insert_delivery_statement,
    new_deliveries_json,
    new_delivery,
)
from facelens.adapters.store.tables import tasks as _tasks
from facelens.adapters.store.tasks import HELD_BY_WORKER, lock_held_statement
from facelens.application.ports import TaskFinish
from facelens.core.callbacks import outcome_fields
from facelens.core.domain import ProcessStatus, TaskOutcome, TaskStatus

_FINISH_ONE = (
    sa.update(_tasks)
    .where(_tasks.c.id == sa.bindparam("task"), HELD_BY_WORKER)
    .values(
        status=sa.bindparam("new_status"),
        ended_at_ms=sa.bindparam("ended", type_=sa.BigInteger),
        result=sa.bindparam("outcome", type_=_tasks.c.result.type),
        error_code=sa.bindparam("code"),
        error_info=sa.bindparam("info"),
        fetch_ms=sa.bindparam("fetch_ms", type_=sa.Integer),
        decode_ms=sa.bindparam("decode_ms", type_=sa.Integer),
        detect_ms=sa.bindparam("detect_ms", type_=sa.Integer),
        lease_until=None,
    )
)
"""SQLite: executed with one parameter set per task (executemany) on held rows: task,
worker, new_status, ended, outcome, code, info and the three stage timings."""

_FINISH_BATCH_PG = sa.text(
    f"""
WITH outcome AS (
    SELECT * FROM unnest(
        CAST(:ids AS BIGINT[]), CAST(:statuses AS TEXT[]), CAST(:ended AS BIGINT[]),
        CAST(:results AS TEXT[]), CAST(:codes AS TEXT[]), CAST(:infos AS TEXT[]),
        CAST(:refunds AS BOOLEAN[]), CAST(:fetch_ms AS INTEGER[]),
        CAST(:decode_ms AS INTEGER[]), CAST(:detect_ms AS INTEGER[])
    ) AS o(id, status, ended, result, code, info, refund, fetch_ms, decode_ms, detect_ms)
), held AS MATERIALIZED (
    SELECT id FROM tasks
    WHERE id = ANY(CAST(:ids AS BIGINT[]))
      AND worker_id = :worker AND status = '{TaskStatus.RUNNING.value}'
    ORDER BY id
    FOR UPDATE
), done AS (
    UPDATE tasks AS t
    SET status = o.status, ended_at_ms = o.ended, result = CAST(o.result AS JSON),
        error_code = o.code, error_info = o.info, lease_until = NULL,
        fetch_ms = o.fetch_ms, decode_ms = o.decode_ms, detect_ms = o.detect_ms
    FROM outcome AS o
    WHERE t.id = o.id AND t.id IN (SELECT id FROM held)
    RETURNING t.id, t.account_id, t.creation_id, o.refund
), completes AS (
    {INSERT_NEW_DELIVERIES_PG}
    WHERE added.task_id IN (SELECT id FROM done)
    ON CONFLICT (task_id, process_status) DO NOTHING
), refunded AS (
    SELECT account_id, count(*) AS n FROM done WHERE refund GROUP BY account_id
), payers AS MATERIALIZED (
    SELECT id FROM accounts WHERE id IN (SELECT account_id FROM refunded)
    ORDER BY id
    FOR UPDATE
), credited AS (
    UPDATE accounts AS a SET credits = a.credits + r.n
    FROM refunded AS r
    WHERE a.id = r.account_id AND a.id IN (SELECT id FROM payers)
), ledgered AS (
    INSERT INTO ledger (account_id, delta, reason, task_id, creation_id, created_at_ms)
    SELECT account_id, 1, 'refund', id, creation_id, :now FROM done WHERE refund
)
SELECT id FROM done
"""
)
"""PostgreSQL: the whole batch in one statement. `held` locks this worker's rows in id
order; `payers` locks the refunded accounts in id order (a fixed order across workers).
`completes` inserts the complete deliveries of the recorded tasks only. Every
data-modifying CTE runs to completion whether or not the final SELECT reads it."""


class FinishStore(StoreBase):
    """The finishing part of the `Store` protocol."""

    async def finish_tasks(
        self, worker_id: str, finishes: Sequence[TaskFinish], now_ms: int
    ) -> set[int]:
        """Store each outcome, schedule its complete callback and maybe refund, in one
        transaction, for the tasks this worker still holds; the ids recorded. A task it
        lost (lease expired and another worker took it, or already done) is skipped,
        nothing written for it."""
        if len({finish.task_id for finish in finishes}) != len(finishes):
            raise ValueError("finish_tasks: a task id appears twice in one batch")
        if not finishes:
            return set()
        if self._postgres:
            async with self._single_statement() as conn:
                result = await conn.execute(
                    _FINISH_BATCH_PG, _batch_params(finishes, worker_id, now_ms)
                )
                return {int(row.id) for row in result}
        async with self._write() as conn:
            return await _finish_in_steps(conn, worker_id, finishes, now_ms)


async def _finish_in_steps(
    conn: AsyncConnection, worker_id: str, finishes: Sequence[TaskFinish], now_ms: int
) -> set[int]:
    """SQLite: the batch statement's steps, one by one, in the caller's transaction."""
    by_id = {finish.task_id: finish for finish in finishes}
    held = (
        await conn.execute(lock_held_statement(False), {"ids": sorted(by_id), "worker": worker_id})
    ).all()
    if not held:
        return set()
    done = [by_id[row.id] for row in held]
    await conn.execute(_FINISH_ONE, [_one_params(f, worker_id, now_ms) for f in done])
    await conn.execute(insert_delivery_statement(False), _completes(done, now_ms))
    refunds = [row for row in held if by_id[row.id].refund]
    per_account: dict[int, int] = {}
    for row in refunds:
        per_account[row.account_id] = per_account.get(row.account_id, 0) + 1
    for account_id in sorted(per_account):
        await credit(conn, account_id, per_account[account_id])
    await write_ledger(
        conn,
        *(
            ledger_row(
                row.account_id, 1, "refund", now_ms, task_id=row.id, creation_id=row.creation_id
            )
            for row in refunds
        ),
    )
    return {int(row.id) for row in held}


def _status(outcome: TaskOutcome) -> str:
    return (TaskStatus.SUCCEEDED if outcome.succeeded else TaskStatus.FAILED).value


def _one_params(finish: TaskFinish, worker_id: str, now_ms: int) -> dict[str, Any]:
    outcome = finish.outcome
    return {
        "task": finish.task_id,
        "worker": worker_id,
        "new_status": _status(outcome),
        "ended": outcome.ended_at_ms or now_ms,
        "outcome": outcome_fields(outcome),
        "code": outcome.error_code,
        "info": outcome.error_info,
        "fetch_ms": outcome.stages.fetch_ms,
        "decode_ms": outcome.stages.decode_ms,
        "detect_ms": outcome.stages.detect_ms,
    }


def _batch_params(finishes: Sequence[TaskFinish], worker_id: str, now_ms: int) -> dict[str, Any]:
    """`_FINISH_BATCH_PG`'s parameters: one array per column. The result is JSON text
    made by `json.dumps`, as SQLAlchemy's JSON type makes it on the other path."""
    return {
        "worker": worker_id,
        "now": now_ms,
        "ids": [f.task_id for f in finishes],
        "statuses": [_status(f.outcome) for f in finishes],
        "ended": [f.outcome.ended_at_ms or now_ms for f in finishes],
        "results": [json.dumps(outcome_fields(f.outcome)) for f in finishes],
        "codes": [f.outcome.error_code for f in finishes],
        "infos": [f.outcome.error_info for f in finishes],
        "refunds": [f.refund for f in finishes],
        "fetch_ms": [f.outcome.stages.fetch_ms for f in finishes],
        "decode_ms": [f.outcome.stages.decode_ms for f in finishes],
        "detect_ms": [f.outcome.stages.detect_ms for f in finishes],
        "deliveries": new_deliveries_json(_completes(finishes, now_ms)),
    }


def _completes(finishes: Sequence[TaskFinish], now_ms: int) -> list[dict[str, Any]]:
    """The complete callbacks' delivery rows."""
    return [
        new_delivery(f.task_id, ProcessStatus.COMPLETED, f.complete_body, now_ms) for f in finishes
    ]
