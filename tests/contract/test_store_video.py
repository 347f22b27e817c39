"""Video tasks in the store (adapters/store/video.py), on SQLite and PostgreSQL: the
reservation at submission, planning segments, the segment queue and its leases,
progress, the one finish (success with a partial refund, or failure refunding all),
and nothing written for a segment another worker took over."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

from facelens.adapters.store.sql_store import SqlStore
from facelens.adapters.store.tables import deliveries, ledger
from facelens.core.callbacks import start_body
from facelens.core.domain import (
    ClaimedTask,
    DetectOptions,
    Face,
    JsonObject,
    NewTask,
    ProcessStatus,
    TaskStatus,
)
from facelens.core.errors import InsufficientCredits
from facelens.core.video import Sampling, Segment, VideoInfo
from facelens.core.video_result import (
    AnalysedFrame,
    VideoResult,
    segment_record,
    video_failure,
    video_success,
)
from facelens.entrypoints.api.views import task_json

from .conftest import T0, WORKER_LEASE_MS, new_account

INFO = VideoInfo("mp4", "h264", 640, 360, 10_000, 25.0, 250)
SEGMENTS = [Segment(0, 0, 5000, 3), Segment(1, 5000, 9001, 2)]


def render(
    task: ClaimedTask,
    info: VideoInfo | None,
    records: Sequence[JsonObject],
    failure: tuple[str, str] | None,
) -> VideoResult:
    if failure is not None:
        return video_failure(task, failure[0], failure[1], info, T0)
    assert info is not None
    return video_success(task, info, records, 1000, T0)


def record(*times: int) -> JsonObject:
    face = Face(10, 10, 50, 50, 0.9)
    frames = [AnalysedFrame(t // 40, t, (face,), (1,)) for t in times]
    return segment_record(frames, 640, 360)


async def submit_video(store: SqlStore, account_id: int, max_frames: int = 10) -> int:
    task = NewTask(
        "http://v.example/a.mp4", {}, DetectOptions(), video=Sampling(max_frames=max_frames)
    )
    [task_id] = await store.submit(account_id, "c" * 32, "http://cb.example/", [task], T0)
    return task_id


async def balance_and_ledger(store: SqlStore, account_id: int) -> tuple[int, int]:
    account = await store.get_account(account_id)
    assert account is not None
    return account.credits, await store.ledger_sum(account_id)


async def test_reservation_counts_and_a_segmented_video_finishes_once(store: SqlStore) -> None:
    account = await new_account(store, credits=12)
    try:
        await submit_video(store, account.id, max_frames=13)
        raise AssertionError("13 credits reserved with a balance of 12")
    except InsufficientCredits:
        pass
    task_id = await submit_video(store, account.id, max_frames=10)
    assert await balance_and_ledger(store, account.id) == (2, 2)
    [claimed] = await store.claim_tasks("w1", 1, WORKER_LEASE_MS, T0, start_body)
    assert claimed.video == Sampling(max_frames=10)

    first = await store.plan_video(task_id, "w1", INFO.stored(), SEGMENTS, WORKER_LEASE_MS, T0)
    assert first is not None
    assert await store.plan_video(task_id, "w2", {}, SEGMENTS, WORKER_LEASE_MS, T0) is None
    # The task has no lease now: the task queue never hands it out again.
    assert await store.claim_tasks("w2", 5, 1, T0 + 10 * WORKER_LEASE_MS, start_body) == []
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.progress == (0, 5)
    assert task_json(view)["progress"] == {"frames_done": 0, "frames_total": 5}

    second = await store.claim_segment("w2", WORKER_LEASE_MS, T0)
    assert second is not None and second.seq == 1 and second.task.id == task_id
    assert second.sampling == Sampling(max_frames=10)
    assert await store.claim_segment("w3", WORKER_LEASE_MS, T0) is None
    await store.segment_progress(second.id, "w2", 1)
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.progress == (1, 5)

    # w2's lease expires; w3 takes the segment over and w2's late result is dropped.
    late = T0 + WORKER_LEASE_MS + 1
    assert await store.renew_segment(first, "w1", late + WORKER_LEASE_MS)  # w1 is alive
    assert not await store.renew_segment(first, "w2", late + WORKER_LEASE_MS)
    again = await store.claim_segment("w3", WORKER_LEASE_MS, late)
    assert again is not None and again.id == second.id and again.attempts == 2
    assert not await store.finish_segment(second.id, "w2", record(5000), None, render, late)

    assert await store.finish_segment(first, "w1", record(0, 1000, 2000), None, render, late)
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.status is TaskStatus.RUNNING and view.progress == (3, 5)
    assert await store.finish_segment(again.id, "w3", record(5000, 6000), None, render, late)

    view = await store.get_task(account.id, task_id)
    assert view is not None and view.status is TaskStatus.SUCCEEDED
    shown = task_json(view)
    assert "progress" not in shown and shown["video"]["frames_analysed"] == 5
    assert [f["timestamp_ms"] for f in shown["result_list"]] == [0, 1000, 2000, 5000, 6000]
    async with store.engine.connect() as conn:
        completes = (
            await conn.execute(
                sa.select(deliveries.c.body).where(
                    deliveries.c.task_id == task_id,
                    deliveries.c.process_status == int(ProcessStatus.COMPLETED),
                )
            )
        ).all()
        refunds = (
            await conn.execute(
                sa.select(ledger.c.delta, ledger.c.reason).where(ledger.c.task_id == task_id)
            )
        ).all()
    assert len(completes) == 1 and json.loads(completes[0].body)["result_code"] == 1
    assert [tuple(r) for r in refunds] == [(5, "video_refund")]
    assert await balance_and_ledger(store, account.id) == (7, 7)  # 12 - 5 analysed


async def test_a_failed_segment_fails_the_task_and_refunds_everything(store: SqlStore) -> None:
    account = await new_account(store, credits=20)
    task_id = await submit_video(store, account.id, max_frames=10)
    await store.claim_tasks("w1", 1, WORKER_LEASE_MS, T0, start_body)
    first = await store.plan_video(task_id, "w1", INFO.stored(), SEGMENTS, WORKER_LEASE_MS, T0)
    second = await store.claim_segment("w2", WORKER_LEASE_MS, T0)
    assert first is not None and second is not None
    failure = ("VIDEO_DECODE_FAILED", "the video stream cannot be decoded")
    assert await store.finish_segment(second.id, "w2", None, failure, render, T0)
    # The other segment's result comes too late: the task is already finished.
    assert not await store.finish_segment(first, "w1", record(0), None, render, T0)
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.status is TaskStatus.FAILED
    assert view.result is not None and view.result["error_code"] == "VIDEO_DECODE_FAILED"
    assert await balance_and_ledger(store, account.id) == (20, 20)
    assert await store.claim_segment("w3", WORKER_LEASE_MS, T0 + 10 * WORKER_LEASE_MS) is None


async def test_a_video_failing_before_segments_is_free(store: SqlStore) -> None:
    account = await new_account(store, credits=20)
    task_id = await submit_video(store, account.id, max_frames=10)
    [claimed] = await store.claim_tasks("w1", 1, WORKER_LEASE_MS, T0, start_body)
    result = video_failure(claimed, "VIDEO_TOO_LONG", "too long", None, T0)
    assert not await store.finish_video(task_id, "w2", result, T0)
    assert await store.finish_video(task_id, "w1", result, T0)
    assert not await store.finish_video(task_id, "w1", result, T0)
    assert await balance_and_ledger(store, account.id) == (20, 20)


async def test_release_segments_gives_a_stopping_workers_segments_back(store: SqlStore) -> None:
    account = await new_account(store, credits=20)
    task_id = await submit_video(store, account.id, max_frames=10)
    await store.claim_tasks("w1", 1, WORKER_LEASE_MS, T0, start_body)
    first = await store.plan_video(task_id, "w1", INFO.stored(), SEGMENTS, WORKER_LEASE_MS, T0)
    assert first is not None
    await store.segment_progress(first, "w1", 2)
    assert await store.release_segments("w2") == 0
    assert await store.release_segments("w1") == 1
    view = await store.get_task(account.id, task_id)
    assert view is not None and view.progress == (0, 5)
    # queued again at once (no lease to wait for), the cut claim not counted
    again = await store.claim_segment("w2", WORKER_LEASE_MS, T0)
    assert again is not None and again.id == first and again.attempts == 1
