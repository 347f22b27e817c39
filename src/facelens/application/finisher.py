"""Records a worker's analysed tasks in batches: one `Store.finish_tasks` transaction
for several outcomes instead of one commit per task.

A commit (and its round trips) costs the same for one task or ten, and on a busy
queue it was most of a task's cost, so outcomes that finish close together share one.
The batch goes out when `max_batch` outcomes wait, when the worker says nothing else
is being analysed (so a lone task is never held back), or `max_wait_s` after the
first outcome arrived, whichever comes first. One batch is in flight at a time; what
arrives meanwhile forms the next one.

Nothing is lost by waiting: until its outcome is recorded, a task stays held by the
worker and its lease keeps being renewed, and the store still checks per task that
the worker holds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from facelens.application.ports import Clock, Store, TaskFinish
from facelens.application.waiting import retry_unavailable, wait_first
from facelens.core.errors import StoreUnavailable
from facelens.core.retry import STORE_RETRY_DELAYS_S

log = logging.getLogger("facelens.worker")


@dataclass(frozen=True, slots=True)
class Recorded:
    """What became of one outcome handed to the finisher."""

    finish: TaskFinish
    held: bool | None
    """True: recorded. False: the worker had lost the task (nothing written). None: the
    database stayed unreachable (nothing written; the lease will expire)."""


OnRecorded = Callable[[Sequence[Recorded]], None]


class Finisher:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        on_recorded: OnRecorded,
        *,
        max_batch: int,
        max_wait_s: float,
        retry_delays_s: Sequence[float] = STORE_RETRY_DELAYS_S,
    ) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id
        self._on_recorded = on_recorded
        self._max_batch = max(1, max_batch)
        self._max_wait_s = max_wait_s
        self._retry_delays_s = tuple(retry_delays_s)
        self._waiting: list[TaskFinish] = []
        self._ready = asyncio.Event()  # something waits
        self._due = asyncio.Event()  # ... and should go now
        self._closing = False

    def add(self, finish: TaskFinish, *, flush_now: bool = False) -> None:
        """Queue one outcome. `flush_now`: nothing else is coming soon, don't wait."""
        self._waiting.append(finish)
        self._ready.set()
        if flush_now or len(self._waiting) >= self._max_batch:
            self._due.set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def run(self) -> None:
        """Record batches until `close()` was called and nothing is left."""
        while True:
            await self._ready.wait()
            if not self._closing:
                await wait_first(self._max_wait_s, self._due)
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            if not self._waiting:
                self._ready.clear()
            if len(self._waiting) < self._max_batch and not self._closing:
                self._due.clear()
            if batch:
                await self._record(batch)
            if self._closing and not self._waiting:
                return

    def close(self) -> None:
        """Record what is waiting at once, then let `run` return."""
        self._closing = True
        self._ready.set()
        self._due.set()

    async def _record(self, batch: list[TaskFinish]) -> None:
        """Record one batch, retrying while the database is unreachable; after the last
        try the outcomes are dropped and the leases left to expire (another worker
        redoes the tasks)."""
        held: set[int] | None = None
        try:
            held = await retry_unavailable(
                lambda: self._store.finish_tasks(self._worker_id, batch, self._clock.now_ms()),
                log,
                f"{len(batch)} outcomes",
                self._retry_delays_s,
            )
        except StoreUnavailable as exc:
            log.warning("%d outcomes not recorded, database unreachable (%s)", len(batch), exc)
        except Exception:
            # A bug: keep the worker alive; the leases expire and the tasks are redone.
            log.exception("recording %d outcomes failed", len(batch))
        self._on_recorded([Recorded(f, None if held is None else f.task_id in held) for f in batch])
