"""Task queries for the API: one task or one submission, with callback history.

Every query filters on the caller's account id in SQL, so a foreign or unknown id reads
exactly like a missing one (None / empty) and no key can see another account's tasks.
A view is read in one snapshot with three queries (tasks, their deliveries, their
attempts), whatever the number of tasks: no per-row round trips.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from facelens.adapters.store.accounts import CHARGED, REFUNDED
from facelens.adapters.store.base import StoreBase
from facelens.adapters.store.tables import deliveries, delivery_attempts, ledger, tasks
from facelens.core.domain import (
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryView,
    DetectOptions,
    ProcessStatus,
    TaskStatus,
    TaskView,
)
from facelens.core.self_service import DAY_MS, DayUsage, TaskFilter
from facelens.core.timings import StageTimes


class QueryStore(StoreBase):
    """The read side of the `Store` protocol."""

    async def get_task(self, account_id: int, task_id: int) -> TaskView | None:
        async with self._read() as conn:
            views = await _views(
                conn, sa.and_(tasks.c.account_id == account_id, tasks.c.id == task_id)
            )
        return views[0] if views else None

    async def list_tasks(self, account_id: int, which: TaskFilter, limit: int) -> list[TaskView]:
        """The account's tasks matching `which`, newest (highest id) first, at most
        `limit` (walks ix_tasks_account_id_id backwards)."""
        conditions = [tasks.c.account_id == account_id]
        if which.status is not None:
            conditions.append(tasks.c.status == which.status.value)
        if which.creation_id is not None:
            if not _comparable(which.creation_id):
                return []
            conditions.append(tasks.c.creation_id == which.creation_id)
        if which.before_id is not None:
            conditions.append(tasks.c.id < which.before_id)
        async with self._read() as conn:
            return await _views(conn, sa.and_(*conditions), newest_first=True, limit=limit)

    async def daily_usage(self, account_id: int, since_ms: int) -> list[DayUsage]:
        """Per UTC day from `since_ms`: tasks created by status, credits charged (debits)
        and refunded (ledger "refund"), as `usage` counts them. Days without either are
        absent."""
        task_day = tasks.c.created_at_ms // DAY_MS
        ledger_day = ledger.c.created_at_ms // DAY_MS
        async with self._read() as conn:
            counts = (
                await conn.execute(
                    sa.select(task_day, tasks.c.status, sa.func.count())
                    .where(tasks.c.account_id == account_id, tasks.c.created_at_ms >= since_ms)
                    .group_by(task_day, tasks.c.status)
                )
            ).all()
            money = (
                await conn.execute(
                    sa.select(ledger_day, CHARGED, REFUNDED)
                    .where(ledger.c.account_id == account_id, ledger.c.created_at_ms >= since_ms)
                    .group_by(ledger_day)
                )
            ).all()
        days: dict[int, DayUsage] = {}
        for day, status, count in counts:
            usage = days.setdefault(int(day), DayUsage(int(day)))
            usage.tasks_by_status[str(status)] = int(count)
        for day, charged, refunded in money:
            old = days.get(int(day), DayUsage(int(day)))
            days[int(day)] = DayUsage(old.day, old.tasks_by_status, int(charged), int(refunded))
        return [days[day] for day in sorted(days)]

    async def get_creation(self, account_id: int, creation_id: str) -> list[TaskView]:
        """All tasks of one submission, in submission (id) order."""
        if not _comparable(creation_id):
            return []
        async with self._read() as conn:
            return await _views(
                conn,
                sa.and_(tasks.c.account_id == account_id, tasks.c.creation_id == creation_id),
            )


def _comparable(text: str) -> bool:
    """PostgreSQL text cannot hold NUL: no stored id has one, and comparing with one is
    an error there (a client's `%00` must read as not found, not as a 500)."""
    return "\x00" not in text


async def _views(
    conn: AsyncConnection,
    which: sa.ColumnElement[bool],
    *,
    newest_first: bool = False,
    limit: int | None = None,
) -> list[TaskView]:
    order = tasks.c.id.desc() if newest_first else tasks.c.id
    task_rows = (
        await conn.execute(sa.select(tasks).where(which).order_by(order).limit(limit))
    ).all()
    if not task_rows:
        return []
    task_ids = [row.id for row in task_rows]
    delivery_rows = (
        await conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.task_id.in_(task_ids))
            .order_by(deliveries.c.task_id, deliveries.c.process_status)
        )
    ).all()
    history: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    if delivery_rows:
        attempt_rows = await conn.execute(
            sa.select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_([row.id for row in delivery_rows]))
            .order_by(delivery_attempts.c.id)
        )
        for row in attempt_rows:
            history[row.delivery_id].append(
                DeliveryAttempt(
                    attempted_at_ms=row.attempted_at_ms,
                    http_status=row.http_status,
                    error=row.error,
                    duration_ms=row.duration_ms,
                )
            )
    by_task: dict[int, list[DeliveryView]] = defaultdict(list)
    for row in delivery_rows:
        by_task[row.task_id].append(_delivery_view(row, history[row.id]))
    return [_task_view(row, by_task[row.id]) for row in task_rows]


def _delivery_view(row: sa.Row[Any], history: list[DeliveryAttempt]) -> DeliveryView:
    return DeliveryView(
        process_status=ProcessStatus(row.process_status),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at_ms=row.next_attempt_at,
        last_http_status=row.last_http_status,
        last_error=row.last_error,
        history=tuple(history),
        redelivered_at_ms=row.redelivered_at_ms,
    )


def _task_view(row: sa.Row[Any], delivery_views: list[DeliveryView]) -> TaskView:
    return TaskView(
        id=row.id,
        creation_id=row.creation_id,
        status=TaskStatus(row.status),
        image_url=row.image_url,
        callback_params=dict(row.callback_params or {}),
        options=DetectOptions.from_json(row.options or {}),
        created_at_ms=row.created_at_ms,
        started_at_ms=row.started_at_ms,
        ended_at_ms=row.ended_at_ms,
        result=row.result,
        deliveries=tuple(delivery_views),
        video=row.video,
        progress=None if row.frames_total is None else (row.frames_done or 0, row.frames_total),
        stages=StageTimes(row.fetch_ms, row.decode_ms, row.detect_ms),
    )
