"""The store's operations side (`OpsStore`): queue gauges and worker heartbeats.

`queue_stats` is read by every process's /metrics at most once a second, so it is
three small statements over indexes: the queued/running counts come from the partial
index of claimable tasks (finished tasks, the bulk of the table, are not in it), the
oldest queued task is the first one in id order, and pending callbacks are counted on
the deliveries' (status, next_attempt_at) index. `bench/queue_stats.py` measures it
on a million tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from facelens.adapters.store.base import StoreBase, insert_ignore
from facelens.adapters.store.tables import QUEUE_STATUSES, deliveries, tasks, workers
from facelens.application.telemetry import QueueStats, WorkerBeat

_IN_QUEUE = tasks.c.status.in_([sa.literal_column(f"'{s}'") for s in QUEUE_STATUSES])
"""Literal values, as in the claim, so both databases see the partial index applies."""

_COUNTS = sa.select(tasks.c.status, sa.func.count()).where(_IN_QUEUE).group_by(tasks.c.status)
_OLDEST = (
    sa.select(tasks.c.created_at_ms)
    .where(_IN_QUEUE, tasks.c.status == sa.literal_column("'queued'"))
    .order_by(tasks.c.id)
    .limit(1)
)
_PENDING = (
    sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
)

_BEAT_COLUMNS = ("host", "pid", "started_at_ms", "last_seen_ms", "tasks_done")
"""A `WorkerBeat`'s fields as they are named in the workers row (its `worker_id` is the
row's `id`)."""


class OperationsStore(StoreBase):
    async def queue_stats(self) -> QueueStats:
        async with self._read() as conn:
            counts = {row[0]: int(row[1]) for row in await conn.execute(_COUNTS)}
            oldest = (await conn.execute(_OLDEST)).scalar_one_or_none()
            pending = int((await conn.execute(_PENDING)).scalar_one())
        return QueueStats(
            queued=counts.get("queued", 0),
            running=counts.get("running", 0),
            callbacks_pending=pending,
            oldest_queued_at_ms=None if oldest is None else int(oldest),
        )

    async def record_heartbeat(self, beat: WorkerBeat) -> None:
        insert = insert_ignore(workers, self._postgres).values(
            id=beat.worker_id, **{name: getattr(beat, name) for name in _BEAT_COLUMNS}
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[workers.c.id],
            set_={name: insert.excluded[name] for name in _BEAT_COLUMNS},
        )
        async with self._write() as conn:
            await conn.execute(upsert)

    async def live_workers(self, seen_since_ms: int) -> Sequence[WorkerBeat]:
        query = (
            sa.select(workers)
            .where(workers.c.last_seen_ms >= seen_since_ms)
            .order_by(workers.c.started_at_ms, workers.c.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            WorkerBeat(worker_id=row.id, **{name: row._mapping[name] for name in _BEAT_COLUMNS})
            for row in rows
        ]

    async def forget_worker(self, worker_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(sa.delete(workers).where(workers.c.id == worker_id))
