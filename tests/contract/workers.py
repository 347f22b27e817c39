"""Helpers to run the real `Worker` on a real store in-process: a pipeline that fetches
nothing (optionally held at a gate), and a `SqlStore` that reports its queue calls.

Not a fake store: `ObservedStore` is `SqlStore` itself, with hooks that record what the
worker asked for and what the database answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np

from facelens.adapters.store.engine import create_engine
from facelens.adapters.store.sql_store import SqlStore
from facelens.application.clock import SystemClock
from facelens.application.pipeline import ImagePipeline
from facelens.application.ports import FetchedImage, StartBody, TaskFinish
from facelens.application.worker import Worker, WorkerConfig
from facelens.core.domain import ClaimedTask, DecodedImage, DetectOptions, Face

TINY = np.zeros((1, 1, 3), dtype=np.uint8)


class GatedFetcher:
    """ "Downloads" at once while `gate` is set, else waits for it; `started` gets each
    URL as its download begins."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.started: asyncio.Queue[str] = asyncio.Queue()

    async def fetch(self, url: str) -> FetchedImage:
        self.started.put_nowait(url)
        await self.gate.wait()
        return FetchedImage(data=b"x", content_type="image/jpeg", final_url=url)


class NoDecode:
    def decode(
        self, data: bytes, content_type: str = "", min_face_size: int | None = None
    ) -> DecodedImage:
        return DecodedImage(pixels=TINY, width=1, height=1, format="JPEG")


class NoDetect:
    name = "noop"

    def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        return []


class ObservedStore(SqlStore):
    """The real store; records claim sizes and finish batches (with what was recorded)
    and lets a test wait until `expected` tasks were recorded."""

    def __init__(self, database_url: str) -> None:
        super().__init__(create_engine(database_url, pre_ping=False))
        self.claims: list[int] = []
        self.finishes: list[tuple[list[int], set[int]]] = []
        self.recorded: set[int] = set()
        self.changed = asyncio.Event()
        self.empty_claims = 0

    async def claim_tasks(
        self, worker_id: str, limit: int, lease_ms: int, now_ms: int, start_body: StartBody
    ) -> list[ClaimedTask]:
        claimed = await super().claim_tasks(worker_id, limit, lease_ms, now_ms, start_body)
        self.claims.append(len(claimed))
        self.empty_claims += not claimed
        self.changed.set()
        return claimed

    async def finish_tasks(
        self, worker_id: str, finishes: Sequence[TaskFinish], now_ms: int
    ) -> set[int]:
        held = await super().finish_tasks(worker_id, finishes, now_ms)
        self.finishes.append(([f.task_id for f in finishes], held))
        self.recorded |= held
        self.changed.set()
        return held

    async def until(self, done: Callable[[], bool], within_s: float = 30.0) -> None:
        """Wait (at most `within_s`) until `done()` is true, re-checked after each call."""

        async def wait() -> None:
            while not done():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), within_s)


def make_worker(
    store: SqlStore, fetcher: GatedFetcher | None = None, **config: object
) -> tuple[Worker, GatedFetcher]:
    fetcher = fetcher or GatedFetcher()
    settings: dict[str, object] = {"worker_id": "w1", "concurrency": 4, "poll_interval_s": 60.0}
    settings.update(config)
    worker = Worker(
        store,
        ImagePipeline(fetcher, NoDecode(), NoDetect()),
        SystemClock(),
        WorkerConfig(**settings),  # type: ignore[arg-type]
    )
    return worker, fetcher


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Event]:
    """Run the worker; on exit ask it to stop and wait for its graceful stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
