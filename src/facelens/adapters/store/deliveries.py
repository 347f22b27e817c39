"""The callback outbox: claim due deliveries under a lease, record each attempt.

Delivery rows are written by the task transactions (start on claim, complete on
finish), so a callback is scheduled if and only if its state change committed. A
dispatcher claims due rows like a worker claims tasks:

    WITH due AS MATERIALIZED (
        SELECT d.id FROM deliveries d
        WHERE d.status = 'pending' AND d.next_attempt_at <= :now
          AND (d.lease_until IS NULL OR d.lease_until < :now)
          AND (d.process_status = 1 OR NOT EXISTS (
                 SELECT 1 FROM deliveries s
                 WHERE s.task_id = d.task_id AND s.process_status = 1
                   AND s.status = 'pending'))
        ORDER BY d.next_attempt_at, d.id LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED              -- PostgreSQL only
    )
    UPDATE deliveries SET lease_until = :until, dispatcher_id = :me
    WHERE id IN (SELECT id FROM due) RETURNING …

The NOT EXISTS keeps a task's complete callback back until its start callback was
delivered or gave up, as the hosted API's receivers expect.

A new delivery row is defined once, by `new_delivery`; claims and SQLite's finish
insert its rows with `insert_delivery_statement`, PostgreSQL's one-statement finish
with `INSERT_NEW_DELIVERIES_PG`, which takes the same rows as one JSON parameter.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from facelens.adapters.store.base import NOW, StoreBase, claim_statement, insert_ignore
from facelens.adapters.store.tables import accounts, deliveries, delivery_attempts, tasks
from facelens.application.ports import AttemptRecord
from facelens.core.domain import DeliveryAttempt, DeliveryJob, DeliveryStatus, ProcessStatus
from facelens.core.self_service import Redelivery

_PENDING = DeliveryStatus.PENDING.value


def new_delivery(
    task_id: int, process_status: ProcessStatus, body: str, now_ms: int
) -> dict[str, Any]:
    """A delivery row, due at once: the one definition of what a scheduled callback
    starts as."""
    return {
        "task_id": task_id,
        "process_status": int(process_status),
        "body": body,
        "status": _PENDING,
        "attempts": 0,
        "next_attempt_at": now_ms,
        "lease_until": None,
        "dispatcher_id": None,
        "last_http_status": None,
        "last_error": "",
        "created_at_ms": now_ms,
    }


@functools.cache
def insert_delivery_statement(postgres: bool) -> Any:
    """Executed with a list of `new_delivery` rows; an existing (task, process_status)
    row wins, so claiming or finishing twice never schedules a callback twice."""
    return insert_ignore(deliveries, postgres).on_conflict_do_nothing(
        index_elements=["task_id", "process_status"]
    )


_NEW_COLUMNS = ", ".join(new_delivery(0, ProcessStatus.STARTED, "", 0))

INSERT_NEW_DELIVERIES_PG = f"""INSERT INTO deliveries ({_NEW_COLUMNS})
    SELECT {_NEW_COLUMNS}
    FROM jsonb_populate_recordset(NULL::deliveries, CAST(:deliveries AS JSONB)) AS added"""
"""PostgreSQL SQL text for inside a larger statement: inserts the `new_delivery` rows
given as one JSON array (`new_deliveries_json`) in the parameter `deliveries`; the
table's own row type converts each field. The caller may add a WHERE on `added` and an
ON CONFLICT clause."""


def new_deliveries_json(rows: Sequence[dict[str, Any]]) -> str:
    """The `deliveries` parameter of `INSERT_NEW_DELIVERIES_PG`."""
    return json.dumps(list(rows), ensure_ascii=False, separators=(",", ":"))


@functools.cache
def _lease_statement(postgres: bool) -> sa.Update:
    """The claim in the module docstring, for one dialect. Parameters: now, limit,
    until, dispatcher."""
    start = deliveries.alias("start")
    start_pending = (
        sa.select(start.c.id)
        .where(
            start.c.task_id == deliveries.c.task_id,
            start.c.process_status == int(ProcessStatus.STARTED),
            start.c.status == _PENDING,
        )
        .exists()
    )
    due = (
        sa.select(deliveries.c.id)
        .where(
            deliveries.c.status == _PENDING,
            deliveries.c.next_attempt_at <= NOW,
            sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < NOW),
            sa.or_(
                deliveries.c.process_status == int(ProcessStatus.STARTED),
                ~start_pending,
            ),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
    )
    return (
        claim_statement(deliveries, due, postgres)
        .values(
            lease_until=sa.bindparam("until", type_=sa.BigInteger),
            dispatcher_id=sa.bindparam("dispatcher"),
        )
        .returning(
            deliveries.c.id,
            deliveries.c.task_id,
            deliveries.c.process_status,
            deliveries.c.body,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
        )
    )


_TARGETS = (
    sa.select(tasks.c.id, tasks.c.callback_url, accounts.c.webhook_secret, tasks.c.account_id)
    .join(accounts, accounts.c.id == tasks.c.account_id)
    .where(tasks.c.id.in_(sa.bindparam("tasks", expanding=True)))
)
"""Where each leased delivery goes and how it is signed. A second query because
SQLite's RETURNING cannot name joined tables."""

_RECORD = (
    sa.update(deliveries)
    .where(
        deliveries.c.id == sa.bindparam("delivery"),
        deliveries.c.dispatcher_id == sa.bindparam("dispatcher"),
        deliveries.c.lease_until.is_not(None),
        deliveries.c.status == _PENDING,
    )
    .values(
        status=sa.bindparam("new_status"),
        attempts=deliveries.c.attempts + 1,
        next_attempt_at=sa.bindparam("next_at", type_=sa.BigInteger),
        last_http_status=sa.bindparam("http_status", type_=sa.Integer),
        last_error=sa.bindparam("error"),
        lease_until=None,
    )
    .returning(deliveries.c.id)
)
"""Parameters: delivery, dispatcher, new_status, next_at, http_status, error."""

_INSERT_ATTEMPT = sa.insert(delivery_attempts)


_REDELIVER = (
    sa.update(deliveries)
    .where(
        deliveries.c.task_id == sa.bindparam("task", type_=sa.BigInteger),
        deliveries.c.process_status == int(ProcessStatus.COMPLETED),
        deliveries.c.status != _PENDING,
    )
    .values(
        status=_PENDING,
        attempts=0,
        next_attempt_at=sa.bindparam("now", type_=sa.BigInteger),
        lease_until=None,
        dispatcher_id=None,
        last_http_status=None,
        last_error="",
        redelivered_at_ms=sa.bindparam("now", type_=sa.BigInteger),
    )
    .returning(deliveries.c.id)
)
"""A settled complete callback made due again, as a fresh delivery of the same body.
Only a settled row matches: no dispatcher holds it, and one pending per task at most."""


class DeliveryStore(StoreBase):
    """The outbox part of the `Store` protocol."""

    async def redeliver(self, account_id: int, task_id: int, now_ms: int) -> Redelivery:
        """Schedule the task's complete callback again (see `_REDELIVER`); the reason
        when it cannot be."""
        async with self._write() as conn:
            owned = (
                await conn.execute(
                    sa.select(tasks.c.id).where(
                        tasks.c.id == task_id, tasks.c.account_id == account_id
                    )
                )
            ).first()
            if owned is None:
                return Redelivery.NOT_FOUND
            if (await conn.execute(_REDELIVER, {"task": task_id, "now": now_ms})).first():
                return Redelivery.SCHEDULED
            complete = (
                await conn.execute(
                    sa.select(deliveries.c.id).where(
                        deliveries.c.task_id == task_id,
                        deliveries.c.process_status == int(ProcessStatus.COMPLETED),
                    )
                )
            ).first()
        return Redelivery.NOT_FINISHED if complete is None else Redelivery.PENDING

    async def claim_deliveries(
        self, dispatcher_id: str, limit: int, lease_ms: int, now_ms: int
    ) -> list[DeliveryJob]:
        """Lease up to `limit` due deliveries, the longest-waiting first."""
        if limit <= 0:
            return []
        async with self._write() as conn:
            leased = sorted(
                await conn.execute(
                    _lease_statement(self._postgres),
                    {
                        "now": now_ms,
                        "limit": limit,
                        "until": now_ms + lease_ms,
                        "dispatcher": dispatcher_id,
                    },
                ),
                key=_due_order,
            )
            if not leased:
                return []
            targets = {
                row.id: (row.callback_url, row.webhook_secret, row.account_id)
                for row in await conn.execute(
                    _TARGETS, {"tasks": sorted({row.task_id for row in leased})}
                )
            }
        return [
            DeliveryJob(
                id=row.id,
                task_id=row.task_id,
                process_status=ProcessStatus(row.process_status),
                callback_url=targets[row.task_id][0],
                body=row.body,
                attempts=row.attempts,
                webhook_secret=targets[row.task_id][1],
                account_id=targets[row.task_id][2],
            )
            for row in leased
        ]

    async def record_delivery_attempt(
        self,
        delivery_id: int,
        dispatcher_id: str,
        attempt: DeliveryAttempt,
        delivered: bool,
        next_attempt_at_ms: int | None,
    ) -> None:
        """Append the attempt and move the delivery on (delivered / pending again at
        `next_attempt_at_ms` / failed when that is None), releasing the lease.

        Ignored unless this dispatcher still holds the lease: a dispatcher whose lease
        expired and was taken over must not overwrite the newer holder's outcome, and a
        repeated call (a retry after a lost commit acknowledgement) records nothing twice.
        """
        record = AttemptRecord(delivery_id, attempt, delivered, next_attempt_at_ms)
        await self.record_delivery_attempts(dispatcher_id, [record])

    async def record_delivery_attempts(
        self, dispatcher_id: str, records: Sequence[AttemptRecord]
    ) -> None:
        """Several attempts in ONE transaction, each as `record_delivery_attempt` (the
        dispatcher records a claimed round at once: a commit per callback was most of
        a fast callback's cost on SQLite, where writers queue on one lock)."""
        if not records:
            return
        async with self._write() as conn:
            for record in records:
                await _record(conn, dispatcher_id, record)


async def _record(conn: AsyncConnection, dispatcher_id: str, record: AttemptRecord) -> None:
    """One attempt, in the caller's transaction, if this dispatcher holds the lease."""
    delivery_id, attempt = record.delivery_id, record.attempt
    if record.delivered:
        status, next_at = DeliveryStatus.DELIVERED, None
    elif record.next_attempt_at_ms is None:
        status, next_at = DeliveryStatus.FAILED, None
    else:
        status, next_at = DeliveryStatus.PENDING, record.next_attempt_at_ms
    held = (
        await conn.execute(
            _RECORD,
            {
                "delivery": delivery_id,
                "dispatcher": dispatcher_id,
                "new_status": status.value,
                "next_at": next_at,
                "http_status": attempt.http_status,
                "error": attempt.error,
            },
        )
    ).first()
    if held is None:
        return
    await conn.execute(
        _INSERT_ATTEMPT,
        {
            "delivery_id": delivery_id,
            "attempted_at_ms": attempt.attempted_at_ms,
            "http_status": attempt.http_status,
            "error": attempt.error,
            "duration_ms": attempt.duration_ms,
        },
    )


def _due_order(row: sa.Row[Any]) -> tuple[int, int]:
    return (row.next_attempt_at, row.id)
