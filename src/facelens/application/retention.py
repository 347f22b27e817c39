"""Retention: finished tasks, their callbacks and results are personal data, kept
`days` days after they ended and then deleted, in the background.

Every process that runs a worker runs a `Retention` loop. It deletes in small batches
(one short transaction each, see adapters/store/retention.py) with a pause between
them, so claims and finishes keep going while a large backlog of old tasks drains;
once nothing is left to delete it sleeps `interval_s`. Several processes may purge at
once: their batches are disjoint. The ledger is never purged (balances stay equal to
the ledger sum). `days == 0` keeps everything (no loop runs).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from facelens.application.ports import Clock
from facelens.application.waiting import wait_first
from facelens.core.errors import StoreUnavailable

log = logging.getLogger("facelens.retention")

DAY_MS = 86_400_000


class PurgeStore(Protocol):
    async def purge_finished(self, before_ms: int, limit: int) -> int: ...


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    days: float
    batch: int = 200
    """Tasks per transaction."""
    pause_s: float = 0.1
    """Between two batches, so a big purge leaves the database to the queue most of
    the time."""
    interval_s: float = 600.0
    """Between two sweeps once nothing is left to purge."""


def cutoff_ms(now_ms: int, days: float) -> int:
    """Tasks that ended before this are purged."""
    return now_ms - int(days * DAY_MS)


async def purge_older_than(
    store: PurgeStore, clock: Clock, days: float, batch: int = 200, pause_s: float = 0.05
) -> int:
    """Purge everything that ended more than `days` ago, batch after batch, until
    nothing is left; how many tasks went (`facelens db purge` and each sweep)."""
    before = cutoff_ms(clock.now_ms(), days)
    total = 0
    while True:
        purged = await store.purge_finished(before, batch)
        total += purged
        if purged < batch:
            return total
        if pause_s:
            await asyncio.sleep(pause_s)


class Retention:
    def __init__(self, store: PurgeStore, clock: Clock, config: RetentionConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until `stop`; a sweep interrupted by `stop` ends after its batch."""
        config = self._config
        if config.days <= 0:
            return
        while not stop.is_set():
            try:
                purged = await self._sweep(stop)
                if purged:
                    log.info("retention: purged %d tasks older than %g days", purged, config.days)
            except StoreUnavailable as exc:
                log.warning("retention: store unavailable (%s); next sweep later", exc)
            await wait_first(config.interval_s, stop)

    async def _sweep(self, stop: asyncio.Event) -> int:
        config = self._config
        before = cutoff_ms(self._clock.now_ms(), config.days)
        total = 0
        while not stop.is_set():
            purged = await self._store.purge_finished(before, config.batch)
            total += purged
            if purged < config.batch:
                break
            await wait_first(config.pause_s, stop)
        return total
