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
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from facelens.adapters.store.base import StoreBase
from facelens.adapters.store.tables import accounts, deliveries, delivery_attempts, tasks
from facelens.core.domain import DeliveryAttempt, DeliveryJob, DeliveryStatus, ProcessStatus

_PENDING = DeliveryStatus.PENDING.value


class DeliveryStore(StoreBase):
    """The outbox part of the `Store` protocol."""

    async def claim_deliveries(
        self, dispatcher_id: str, limit: int, lease_ms: int, now_ms: int
    ) -> list[DeliveryJob]:
        """Lease up to `limit` due deliveries, the longest-waiting first."""
        if limit <= 0:
            return []
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
        due = self._skip_locked(
            sa.select(deliveries.c.id)
            .where(
                deliveries.c.status == _PENDING,
                deliveries.c.next_attempt_at <= now_ms,
                sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now_ms),
                sa.or_(
                    deliveries.c.process_status == int(ProcessStatus.STARTED),
                    ~start_pending,
                ),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit),
            deliveries,
        ).cte("due")
        if self._postgres:
            due = due.prefix_with("MATERIALIZED")
        lease = (
            sa.update(deliveries)
            .where(deliveries.c.id.in_(sa.select(due.c.id)))
            .values(lease_until=now_ms + lease_ms, dispatcher_id=dispatcher_id)
            .returning(
                deliveries.c.id,
                deliveries.c.task_id,
                deliveries.c.process_status,
                deliveries.c.body,
                deliveries.c.attempts,
                deliveries.c.next_attempt_at,
            )
        )
        async with self._write() as conn:
            leased = sorted((await conn.execute(lease)).all(), key=_due_order)
            if not leased:
                return []
            # SQLite's RETURNING cannot name joined tables: a second, indexed lookup.
            targets = {
                row.task_id: (row.callback_url, row.webhook_secret)
                for row in await conn.execute(
                    sa.select(tasks.c.id.label("task_id"), tasks.c.callback_url)
                    .add_columns(accounts.c.webhook_secret)
                    .join(accounts, accounts.c.id == tasks.c.account_id)
                    .where(tasks.c.id.in_({row.task_id for row in leased}))
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
        if delivered:
            status, next_at = DeliveryStatus.DELIVERED, None
        elif next_attempt_at_ms is None:
            status, next_at = DeliveryStatus.FAILED, None
        else:
            status, next_at = DeliveryStatus.PENDING, next_attempt_at_ms
        async with self._write() as conn:
            held = (
                await conn.execute(
                    sa.update(deliveries)
                    .where(
                        deliveries.c.id == delivery_id,
                        deliveries.c.dispatcher_id == dispatcher_id,
                        deliveries.c.lease_until.is_not(None),
                        deliveries.c.status == _PENDING,
                    )
                    .values(
                        status=status.value,
                        attempts=deliveries.c.attempts + 1,
                        next_attempt_at=next_at,
                        last_http_status=attempt.http_status,
                        last_error=attempt.error,
                        lease_until=None,
                    )
                    .returning(deliveries.c.id)
                )
            ).first()
            if held is None:
                return
            await conn.execute(
                sa.insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempted_at_ms=attempt.attempted_at_ms,
                    http_status=attempt.http_status,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )


def _due_order(row: sa.Row[Any]) -> tuple[int, int]:
    return (row.next_attempt_at, row.id)
