"""Video tasks in the store: segments as a second queue, and finishing a video once.

`video_segments` is claimed like `tasks` (the shared `claim_statement`: oldest first,
SKIP LOCKED on PostgreSQL, a lease that a killed worker lets expire). Once its
segments are planned, a video task has no lease of its own (status running,
lease_until NULL: the task claim never takes it again); its segments carry it.

Every method that touches a task's row locks it FIRST (`FOR UPDATE` on PostgreSQL;
SQLite has one writer anyway), then its segments. Recording a segment therefore
serializes with the other segments of the same task, so exactly one of them sees
"no segment left" and finishes the task, in the same transaction: stored result,
complete callback (unique per task and status), refund of the credits not used and
its ledger row. A failed segment fails the task at once and cancels the others.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from facelens.adapters.store.accounts import credit, ledger_row, write_ledger
from facelens.adapters.store.base import NOW, StoreBase, claim_statement, for_update
from facelens.adapters.store.deliveries import insert_delivery_statement, new_delivery
from facelens.adapters.store.tables import tasks as _tasks
from facelens.adapters.store.tables import video_segments as _segments
from facelens.adapters.store.tasks import CLAIMED_COLUMNS, claimed_task
from facelens.application.video_ports import (
    ClaimedSegment,
    Render,
    SegmentRecorded,
    VideoFinished,
)
from facelens.core.domain import JsonObject, ProcessStatus, TaskStatus
from facelens.core.timings import NOT_MEASURED, StageTimes
from facelens.core.video import Sampling, Segment, VideoInfo

if TYPE_CHECKING:  # admin commands load this module: no NumPy (the tracker) here
    from facelens.core.video_result import VideoResult

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
REFUND_REASON = "video_refund"

_TASK_COLUMNS = (*CLAIMED_COLUMNS, _tasks.c.status, _tasks.c.worker_id)


def sampling_of(video: Any) -> Sampling:
    """A task's stored `video` column back to its Sampling."""
    return Sampling.from_json(dict(video or {}))


@functools.cache
def _claim_segment_statement(postgres: bool) -> sa.Update:
    due = (
        sa.select(_segments.c.id)
        .where(
            _segments.c.status.in_([sa.literal_column(f"'{s}'") for s in (QUEUED, RUNNING)]),
            sa.or_(_segments.c.status == QUEUED, _segments.c.lease_until < NOW),
        )
        .order_by(_segments.c.id)
    )
    return (
        claim_statement(_segments, due, postgres)
        .values(
            status=RUNNING,
            worker_id=sa.bindparam("worker"),
            lease_until=sa.bindparam("until", type_=sa.BigInteger),
            attempts=_segments.c.attempts + 1,
            frames_done=0,  # a segment taken over is redone from its start
        )
        .returning(*_segments.c)
    )


def _held_segment(segment_id: int, worker_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        _segments.c.id == segment_id,
        _segments.c.worker_id == worker_id,
        _segments.c.status == RUNNING,
    )


class VideoSegmentStore(StoreBase):
    """The `VideoStore` port (application/video_ports.py)."""

    async def plan_video(
        self,
        task_id: int,
        worker_id: str,
        info: JsonObject,
        segments: Sequence[Segment],
        lease_ms: int,
        now_ms: int,
    ) -> int | None:
        async with self._write() as conn:
            row = await self._lock_task(conn, task_id)
            if row is None or row.status != TaskStatus.RUNNING.value or row.worker_id != worker_id:
                return None
            video = {**dict(row.video or {}), "info": info}
            await conn.execute(
                sa.update(_tasks)
                .where(_tasks.c.id == task_id)
                .values(
                    video=video,
                    frames_total=sum(s.frames for s in segments),
                    frames_done=0,
                    lease_until=None,
                    worker_id=None,
                )
            )
            rows = [
                {
                    "task_id": task_id,
                    "seq": s.index,
                    "start_ms": s.start_ms,
                    "end_ms": s.end_ms,
                    "frames": s.frames,
                    "frames_done": 0,
                    "status": RUNNING if s.index == 0 else QUEUED,
                    "attempts": 1 if s.index == 0 else 0,
                    "lease_until": now_ms + lease_ms if s.index == 0 else None,
                    "worker_id": worker_id if s.index == 0 else None,
                    "result": None,
                    "created_at_ms": now_ms,
                }
                for s in segments
            ]
            result = await conn.execute(
                sa.insert(_segments).returning(_segments.c.id, sort_by_parameter_order=True), rows
            )
            return int(next(iter(result.scalars())))

    async def claim_segment(
        self, worker_id: str, lease_ms: int, now_ms: int
    ) -> ClaimedSegment | None:
        async with self._write() as conn:
            claimed = (
                await conn.execute(
                    _claim_segment_statement(self._postgres),
                    {"now": now_ms, "limit": 1, "worker": worker_id, "until": now_ms + lease_ms},
                )
            ).first()
            if claimed is None:
                return None
            task = (
                await conn.execute(sa.select(*_TASK_COLUMNS).where(_tasks.c.id == claimed.task_id))
            ).one()
        return ClaimedSegment(
            id=claimed.id,
            task=claimed_task(task),
            sampling=sampling_of(task.video),
            seq=claimed.seq,
            start_ms=claimed.start_ms,
            end_ms=claimed.end_ms,
            frames=claimed.frames,
            attempts=claimed.attempts,
        )

    async def renew_segment(self, segment_id: int, worker_id: str, until_ms: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(_segments)
                .where(_held_segment(segment_id, worker_id))
                .values(lease_until=until_ms)
            )
        return bool(result.rowcount)

    async def segment_progress(self, segment_id: int, worker_id: str, frames_done: int) -> None:
        async with self._write() as conn:
            task_id = await self._task_of(conn, segment_id)
            if task_id is None:
                return
            await self._lock_task(conn, task_id)
            updated = await conn.execute(
                sa.update(_segments)
                .where(_held_segment(segment_id, worker_id))
                .values(frames_done=frames_done)
            )
            if updated.rowcount:
                await self._sum_progress(conn, task_id)

    async def finish_segment(
        self,
        segment_id: int,
        worker_id: str,
        record: JsonObject | None,
        failure: tuple[str, str] | None,
        render: Render,
        now_ms: int,
        stages: StageTimes = NOT_MEASURED,
    ) -> SegmentRecorded | None:
        async with self._write() as conn:
            task_id = await self._task_of(conn, segment_id)
            if task_id is None:
                return None
            task = await self._lock_task(conn, task_id)
            held = (
                await conn.execute(
                    sa.select(_segments.c.id).where(_held_segment(segment_id, worker_id))
                )
            ).first()
            if task is None or held is None:
                return None
            if task.status != TaskStatus.RUNNING.value:  # failed by another segment
                await self._set_segment(conn, segment_id, CANCELLED, None, 0)
                return None
            claimed = claimed_task(task)
            info = VideoInfo.from_stored(dict(task.video or {}).get("info"))
            if failure is not None or record is None:
                await self._set_segment(conn, segment_id, FAILED, None, 0)
                await conn.execute(
                    sa.update(_segments)
                    .where(
                        _segments.c.task_id == task_id, _segments.c.status.in_([QUEUED, RUNNING])
                    )
                    .values(status=CANCELLED, lease_until=None)
                )
                failed = failure or ("INTERNAL_ERROR", "a segment has no result")
                done = await self._records(conn, task_id, DONE)
                spent = _sum_stages([*(_stages_of(r) for r in done), stages])
                result = render(claimed, info, [], failed)
                return SegmentRecorded(await self._finish_task(conn, task, result, now_ms, spent))
            record = {**record, STAGES_KEY: _stages_json(stages)}
            await self._set_segment(conn, segment_id, DONE, record, len(record["frames"]))
            await self._sum_progress(conn, task_id)
            left = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(_segments)
                    .where(_segments.c.task_id == task_id, _segments.c.status != DONE)
                )
            ).scalar_one()
            if left != 0:
                return SegmentRecorded(None)
            records = await self._records(conn, task_id, None)
            result = render(claimed, info, records, None)
            spent = _sum_stages([_stages_of(r) for r in records])
            return SegmentRecorded(await self._finish_task(conn, task, result, now_ms, spent))

    async def release_segments(self, worker_id: str) -> int:
        held = sa.and_(_segments.c.worker_id == worker_id, _segments.c.status == RUNNING)
        async with self._write() as conn:
            found = await conn.execute(sa.select(_segments.c.task_id).where(held).distinct())
            task_ids = sorted(int(t) for t in found.scalars())
            for task_id in task_ids:  # tasks first, as every transaction here
                await self._lock_task(conn, task_id)
            released = await conn.execute(
                sa.update(_segments)
                .where(held)
                .values(
                    status=QUEUED,
                    worker_id=None,
                    lease_until=None,
                    attempts=_segments.c.attempts - 1,
                    frames_done=0,
                )
            )
            for task_id in task_ids:
                await self._sum_progress(conn, task_id)
        return int(released.rowcount)

    async def finish_video(
        self,
        task_id: int,
        worker_id: str,
        result: VideoResult,
        now_ms: int,
        stages: StageTimes = NOT_MEASURED,
    ) -> VideoFinished | None:
        async with self._write() as conn:
            task = await self._lock_task(conn, task_id)
            if task is None or task.status != TaskStatus.RUNNING.value:
                return None
            if task.worker_id != worker_id:
                return None
            return await self._finish_task(conn, task, result, now_ms, stages)

    # steps inside the caller's transaction

    async def _lock_task(self, conn: AsyncConnection, task_id: int) -> sa.Row[Any] | None:
        query = for_update(sa.select(*_TASK_COLUMNS).where(_tasks.c.id == task_id), self._postgres)
        row: sa.Row[Any] | None = (await conn.execute(query)).first()
        return row

    async def _task_of(self, conn: AsyncConnection, segment_id: int) -> int | None:
        found = await conn.execute(
            sa.select(_segments.c.task_id).where(_segments.c.id == segment_id)
        )
        value = found.scalar_one_or_none()
        return None if value is None else int(value)

    async def _records(
        self, conn: AsyncConnection, task_id: int, status: str | None
    ) -> list[JsonObject]:
        """The task's segment records in time order (only those in `status`)."""
        query = sa.select(_segments.c.result).where(_segments.c.task_id == task_id)
        if status is not None:
            query = query.where(_segments.c.status == status)
        rows = (await conn.execute(query.order_by(_segments.c.seq))).scalars()
        return [dict(r) for r in rows if r is not None]

    async def _set_segment(
        self, conn: AsyncConnection, segment_id: int, status: str, record: Any, done: int
    ) -> None:
        await conn.execute(
            sa.update(_segments)
            .where(_segments.c.id == segment_id)
            .values(status=status, result=record, frames_done=done, lease_until=None)
        )

    async def _sum_progress(self, conn: AsyncConnection, task_id: int) -> None:
        total = (
            sa.select(sa.func.coalesce(sa.func.sum(_segments.c.frames_done), 0))
            .where(_segments.c.task_id == task_id)
            .scalar_subquery()
        )
        await conn.execute(
            sa.update(_tasks).where(_tasks.c.id == task_id).values(frames_done=total)
        )

    async def _finish_task(
        self,
        conn: AsyncConnection,
        task: sa.Row[Any],
        result: VideoResult,
        now_ms: int,
        stages: StageTimes,
    ) -> VideoFinished:
        """Result, stage times, complete callback and refund of the unused reserved
        credits."""
        status = TaskStatus.SUCCEEDED if result.succeeded else TaskStatus.FAILED
        await conn.execute(
            sa.update(_tasks)
            .where(_tasks.c.id == task.id)
            .values(
                status=status.value,
                ended_at_ms=now_ms,
                result=result.result,
                error_code=result.error_code,
                error_info=result.error_info,
                lease_until=None,
                fetch_ms=stages.fetch_ms,
                decode_ms=stages.decode_ms,
                detect_ms=stages.detect_ms,
            )
        )
        await conn.execute(
            insert_delivery_statement(self._postgres),
            [new_delivery(task.id, ProcessStatus.COMPLETED, result.complete_body, now_ms)],
        )
        reserved = sampling_of(task.video).max_frames
        refund = reserved - (result.frames_analysed if result.succeeded else 0)
        if refund > 0:
            await credit(conn, task.account_id, refund)
            await write_ledger(
                conn,
                ledger_row(
                    task.account_id,
                    refund,
                    REFUND_REASON,
                    now_ms,
                    task_id=task.id,
                    creation_id=task.creation_id,
                ),
            )
        return VideoFinished(
            succeeded=result.succeeded,
            error_code=result.error_code,
            total_ms=max(0, now_ms - task.created_at_ms),
            refunded=max(0, refund),
            stages=stages,
        )


STAGES_KEY = "stages"
"""Where a done segment's record keeps the time its stages took (ms, or null)."""
_STAGE_NAMES = ("fetch_ms", "decode_ms", "detect_ms")


def _stages_json(stages: StageTimes) -> JsonObject:
    return {name: getattr(stages, name) for name in _STAGE_NAMES}


def _stages_of(record: JsonObject) -> StageTimes:
    stored = record.get(STAGES_KEY) or {}
    return StageTimes(*(stored.get(name) for name in _STAGE_NAMES))


def _sum_stages(parts: Sequence[StageTimes]) -> StageTimes:
    """Each stage summed over the parts that ran it (null when none did)."""

    def total(name: str) -> int | None:
        values = [v for v in (getattr(p, name) for p in parts) if v is not None]
        return sum(values) if values else None

    return StageTimes(*(total(name) for name in _STAGE_NAMES))
