"""A segment taken over from a dead worker, on a real SQLite store: the task's progress
drops the dead worker's frames at once, not at the next progress write.

The store, the loopback download, the clip and the sandboxed decoder are real; the
detector is a gate the test holds shut, so the progress is read while the new holder
is at its first frame (no timing guess)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from facelens.adapters.http import SafeHttp
from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import open_store
from facelens.adapters.video.download import VideoDownloads
from facelens.adapters.video.sandbox import VideoDecoder
from facelens.application.video_tasks import VideoConfig, VideoTasks
from facelens.core.callbacks import start_body
from facelens.core.domain import DecodedImage, DetectOptions, Face, NewTask, TaskStatus
from facelens.core.netpolicy import AddressPolicy
from facelens.core.video import Sampling, Segment, VideoInfo
from tests.integration.conftest import eventually
from tests.support import hostile_videos as hv
from tests.support.servers import HttpServer, Reply

T0 = 1_764_000_000_000
LEASE_MS = 30_000


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


async def test_progress_drops_the_dead_holders_frames_at_takeover(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'facelens.db'}"
    await asyncio.to_thread(lambda: asyncio.run(upgrade(url)))
    store = await open_store(url)
    clip = hv.h264_clip(tmp_path / "c.mp4", frames=50)  # 2 s at 25 fps
    entered, release = asyncio.Event(), asyncio.Event()

    async def gate(image: DecodedImage, options: DetectOptions) -> list[Face]:
        entered.set()
        await release.wait()
        return []

    with HttpServer() as host:
        host.route("/c.mp4", Reply(200, {"Content-Type": "video/mp4"}, clip.read_bytes()))
        try:
            account = await store.create_account("acme", 100, "whsec_acme", now_ms=T0)
            sampling = Sampling(interval_ms=200, max_frames=20)
            task = NewTask(host.url("/c.mp4"), {}, DetectOptions(), video=sampling)
            [task_id] = await store.submit(account.id, "c" * 32, "http://cb.example/", [task], T0)
            assert await store.claim_tasks("dead", 1, LEASE_MS, T0, start_body)
            info = VideoInfo("mp4", "h264", 320, 240, 2000, 25.0, 50)
            segments = [Segment(0, 0, 2000, 10)]
            first = await store.plan_video(task_id, "dead", info.stored(), segments, LEASE_MS, T0)
            assert first is not None
            await store.segment_progress(first, "dead", 4)  # then the worker dies
            view = await store.get_task(account.id, task_id)
            assert view is not None and view.progress == (4, 10)

            async with SafeHttp(AddressPolicy(allow_private=True)) as http:
                video = VideoTasks(
                    store,
                    VideoDownloads(http, tmp_path / "video-tmp"),
                    VideoDecoder(),
                    gate,
                    FixedClock(T0 + 2 * LEASE_MS),  # the dead worker's lease has expired
                    VideoConfig(worker_id="w2", lease_ms=LEASE_MS, progress_every_s=3600),
                )
                stop = asyncio.Event()
                runner = asyncio.create_task(video.run_segments(stop))
                try:
                    async with asyncio.timeout(60):
                        await entered.wait()  # w2 holds the segment, at its first frame
                    view = await store.get_task(account.id, task_id)
                    assert view is not None
                    assert view.progress == (0, 10), "the redo starts from 0 frames done"
                    release.set()

                    async def finished() -> bool:
                        done = await store.get_task(account.id, task_id)
                        return done is not None and done.status is TaskStatus.SUCCEEDED

                    await eventually(finished, 60, "the segment to finish the task")
                finally:
                    release.set()
                    stop.set()
                    await runner
        finally:
            await store.close()
