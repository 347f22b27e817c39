"""A process's video analysis slots: how many video analyses it runs at once.

A video analysis (a video task's first segment in `VideoTasks.run_task`, or a segment
claimed by the `run_segments` loop) keeps the process's inference busy for as long as
it lasts, often a minute. A process that claimed a second segment while still
analysing one would run both on the same inference slot, each at half speed, while an
idle process elsewhere waited for work: with 3 workers on a 3-minute clip, the worker
that owned the task took segments 0 and 1 and the third worker got nothing. So the
segment loop claims only while a slot is free, and takes its slot before the claim (a
video task starting meanwhile cannot make the process hold two).

A video task claimed by the worker takes a slot even when none is free: it is already
claimed, and the sooner it is probed and planned, the sooner idle processes get its
other segments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class AnalysisSlots:
    def __init__(self, capacity: int = 1) -> None:
        self.capacity = capacity
        self._busy = 0
        self.freed = asyncio.Event()
        """Set when a slot is given back (the segment loop waits on it while busy)."""

    @property
    def free(self) -> bool:
        return self._busy < self.capacity

    @property
    def busy(self) -> int:
        return self._busy

    @contextlib.contextmanager
    def taken(self) -> Iterator[None]:
        """Hold one slot for the block (even past the capacity: see the module doc)."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy < self.capacity:
                self.freed.set()
