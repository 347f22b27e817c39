"""Worker heartbeats: each worker process says it is alive, in the shared database.

An API-only node, `facelens workers` and the `facelens_workers_live` gauge read them
to tell "no worker at all" (tasks are charged and never analysed) from "busy". A
heartbeat is one small upsert every `interval_s` per process, negligible next to the
queue's own traffic. A worker that stops gracefully removes its row; one that dies
simply stops beating and drops out of the live list after the live window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from facelens.application.ports import Clock
from facelens.application.telemetry import OpsStore, WorkerBeat
from facelens.application.waiting import wait_first
from facelens.core.errors import StoreUnavailable

log = logging.getLogger("facelens.heartbeat")

HEARTBEAT_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class Identity:
    worker_id: str
    host: str
    pid: int

    @classmethod
    def of_this_process(cls, worker_id: str) -> Identity:
        return cls(worker_id=worker_id, host=socket.gethostname(), pid=os.getpid())


@dataclass(eq=False, slots=True)
class Heartbeat:
    ops: OpsStore
    clock: Clock
    identity: Identity
    tasks_done: Callable[[], int]
    interval_s: float = HEARTBEAT_INTERVAL_S
    started_at_ms: int = field(init=False)

    def __post_init__(self) -> None:
        self.started_at_ms = self.clock.now_ms()

    def _beat(self) -> WorkerBeat:
        return WorkerBeat(
            worker_id=self.identity.worker_id,
            host=self.identity.host,
            pid=self.identity.pid,
            started_at_ms=self.started_at_ms,
            last_seen_ms=self.clock.now_ms(),
            tasks_done=self.tasks_done(),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until `stop`, then remove this worker's row (best effort)."""
        failing = False
        while not stop.is_set():
            try:
                await self.ops.record_heartbeat(self._beat())
                if failing:
                    log.info("heartbeat recorded again")
                failing = False
            except StoreUnavailable as exc:
                if not failing:  # once per outage, not every few seconds
                    log.warning("heartbeat not recorded (%s)", exc)
                failing = True
            await wait_first(self.interval_s, stop)
        with contextlib.suppress(StoreUnavailable):
            await self.ops.forget_worker(self.identity.worker_id)
