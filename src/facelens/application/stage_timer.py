"""Measures the stages of one analysis as they happen.

The pipeline times each stage around its work, also when the stage raises (a failed
download still took its time), so a failed task's timings show how far it got. The
timer feeds both the task's stored timings and the stage histograms.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Literal

from facelens.application.telemetry import NO_TELEMETRY, Telemetry
from facelens.core.timings import StageTimes

AnalysisStage = Literal["fetch", "decode", "detect"]


class StageTimer:
    def __init__(
        self,
        telemetry: Telemetry = NO_TELEMETRY,
        perf_counter: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._telemetry = telemetry
        self._perf_counter = perf_counter
        self._seconds: dict[AnalysisStage, float] = {}

    @contextlib.contextmanager
    def measure(self, stage: AnalysisStage) -> Iterator[None]:
        started = self._perf_counter()
        try:
            yield
        finally:
            seconds = self._perf_counter() - started
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds
            self._telemetry.stage(stage, seconds)

    def times(self) -> StageTimes:
        def ms(stage: AnalysisStage) -> int | None:
            seconds = self._seconds.get(stage)
            return None if seconds is None else round(seconds * 1000)

        return StageTimes(fetch_ms=ms("fetch"), decode_ms=ms("decode"), detect_ms=ms("detect"))
