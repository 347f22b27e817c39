"""Segments go to idle processes: a process busy analysing a segment claims no other
while another process is idle and polling (application/analysis_slots.py).

Two worker processes' video flows (A and B: each its own `VideoTasks`, downloads and
sandboxed decoder) on one real SQLite file, a clip made by tests/support/clips.py on a
loopback host. A claims the task and analyses its first segment while its own segment
loop runs, as in `facelens worker`; B's loop polls. Each detector is a gate the test
holds shut, so "busy" is a state the test controls, not a timing guess. Before the
fix, A's own loop (woken when A planned the segments) claimed segment 1 while A was
still at segment 0, and B got one segment at most."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from facelens.adapters.http import SafeHttp
from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import SqlStore, open_store
from facelens.adapters.video.download import VideoDownloads
from facelens.adapters.video.sandbox import VideoDecoder
from facelens.application.clock import SystemClock
from facelens.application.video_tasks import VideoConfig, VideoTasks
from facelens.core.callbacks import start_body
from facelens.core.domain import DecodedImage, DetectOptions, Face, NewTask, TaskStatus
from facelens.core.netpolicy import AddressPolicy
from facelens.core.video import Sampling
from tests.integration.conftest import FACE_IMAGES, eventually
from tests.support.clips import make_clip
from tests.support.servers import HttpServer, Reply

Rows = dict[int, tuple[str | None, str]]


class Gate:
    """A detector that holds every call until `opened`; `waiting` counts the held
    calls, i.e. the analyses this process is in the middle of."""

    def __init__(self) -> None:
        self.waiting = 0
        self.opened = asyncio.Event()

    async def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        self.waiting += 1
        try:
            await self.opened.wait()
        finally:
            self.waiting -= 1
        return []


async def segment_rows(url: str, task_id: int) -> Rows:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT seq, worker_id, status FROM video_segments WHERE task_id = :t"),
                {"t": task_id},
            )
            return {int(seq): (worker, str(status)) for seq, worker, status in rows}
    finally:
        await engine.dispose()


async def complete_deliveries(url: str, task_id: int) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            count = await conn.execute(
                sa.text(
                    "SELECT count(*) FROM deliveries WHERE task_id = :t AND process_status = 2"
                ),
                {"t": task_id},
            )
            return int(count.scalar_one())
    finally:
        await engine.dispose()


def flow(store: SqlStore, http: SafeHttp, tmp: Path, worker: str, gate: Gate) -> VideoTasks:
    config = VideoConfig(worker_id=worker, segment_ms=1000, lease_ms=30_000, poll_interval_s=0.05)
    downloads = VideoDownloads(http, tmp / f"video-tmp-{worker}")
    return VideoTasks(store, downloads, VideoDecoder(), gate.detect, SystemClock(), config)


async def test_a_busy_process_leaves_the_next_segment_to_an_idle_one(
    tmp_path: Path, dev_images: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'facelens.db'}"
    await asyncio.to_thread(lambda: asyncio.run(upgrade(url)))
    clip = make_clip(
        dev_images / FACE_IMAGES[0], np.zeros((0, 4)), tmp_path / "c.mp4", size=(320, 180)
    )  # 3 s: frames at 0, 500, ... 2500 ms, 2 in each of 3 segments of 1 s
    store = await open_store(url)
    gate_a, gate_b = Gate(), Gate()
    stop = asyncio.Event()
    with HttpServer() as host:
        host.route("/c.mp4", Reply(200, {"Content-Type": "video/mp4"}, clip.path.read_bytes()))
        try:
            clock = SystemClock()
            account = await store.create_account("acme", 100, "whsec_acme", now_ms=clock.now_ms())
            sampling = Sampling(interval_ms=500, max_frames=20)
            new = NewTask(host.url("/c.mp4"), {}, DetectOptions(), video=sampling)
            [task_id] = await store.submit(
                account.id, "c" * 32, "http://cb.example/", [new], clock.now_ms()
            )
            [task] = await store.claim_tasks("A", 1, 30_000, clock.now_ms(), start_body)
            async with SafeHttp(AddressPolicy(allow_private=True)) as http:
                a = flow(store, http, tmp_path, "A", gate_a)
                b = flow(store, http, tmp_path, "B", gate_b)
                loops = [
                    asyncio.create_task(a.run_segments(stop)),
                    asyncio.create_task(b.run_segments(stop)),
                ]
                owner = asyncio.create_task(a.run_task(task, sampling))  # A's worker path
                try:
                    await eventually(
                        lambda: gate_b.waiting >= 1 or gate_a.waiting >= 2,
                        60,
                        "B at its first frame, or A analysing two segments",
                    )
                    assert (gate_a.waiting, gate_b.waiting) == (1, 1), "A must not take two"
                    rows = await segment_rows(url, task_id)
                    assert rows == {
                        0: ("A", "running"),
                        1: ("B", "running"),
                        2: (None, "queued"),  # both busy: nobody takes it yet
                    }, rows

                    # A's first segment ends: its slot is free and its loop takes segment 2.
                    gate_a.opened.set()

                    async def a_did_segment_2() -> bool:
                        return (await segment_rows(url, task_id))[2] == ("A", "done")

                    await eventually(a_did_segment_2, 60, "A to claim and finish segment 2")
                    gate_b.opened.set()

                    async def succeeded() -> bool:
                        view = await store.get_task(account.id, task_id)
                        return view is not None and view.status is TaskStatus.SUCCEEDED

                    await eventually(succeeded, 60, "the last segment to finish the task")
                    await owner
                finally:
                    gate_a.opened.set()
                    gate_b.opened.set()
                    stop.set()
                    await asyncio.gather(owner, *loops, return_exceptions=True)
            rows = await segment_rows(url, task_id)
            assert rows == {0: ("A", "done"), 1: ("B", "done"), 2: ("A", "done")}, rows
            assert await complete_deliveries(url, task_id) == 1
        finally:
            await store.close()
