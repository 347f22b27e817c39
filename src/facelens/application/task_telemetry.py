"""The worker's reports to `Telemetry`, kept out of the worker's queue logic.

Queue wait is observed once per task, at its first claim (a re-claimed task's wait was
already counted); total time, submit to recorded outcome, once its outcome is
recorded. `tasks_done` feeds the worker's heartbeat. A video task is reported by
whichever process finishes it (`video_finished`), once, with its stages' totals.
"""

from __future__ import annotations

from collections.abc import Sequence

from facelens.application.ports import TaskFinish
from facelens.application.telemetry import NO_TELEMETRY, Stage, Telemetry
from facelens.application.video_ports import VideoFinished
from facelens.core.domain import ClaimedTask


class TaskTelemetry:
    def __init__(self, telemetry: Telemetry = NO_TELEMETRY) -> None:
        self.telemetry = telemetry
        self.tasks_done = 0
        """Outcomes this process recorded since it started."""
        self._created_at: dict[int, int] = {}

    def claimed(self, tasks: Sequence[ClaimedTask]) -> None:
        for task in tasks:
            if task.created_at_ms is None:
                continue
            self._created_at[task.id] = task.created_at_ms
            if task.attempts == 1:
                wait_ms = task.started_at_ms - task.created_at_ms
                self.telemetry.stage("queue_wait", wait_ms / 1000)

    def busy(self, slots: int) -> None:
        self.telemetry.slots_busy(slots)

    def recorded(self, finish: TaskFinish, held: bool | None) -> None:
        """The finisher's verdict on one outcome (held None: database unreachable)."""
        created = self._created_at.pop(finish.task_id, None)
        if not held:
            return
        outcome = finish.outcome
        self.tasks_done += 1
        self.telemetry.task_finished(outcome.succeeded, outcome.error_code)
        if created is not None and outcome.ended_at_ms:
            self.telemetry.stage("total", max(0, outcome.ended_at_ms - created) / 1000)
        if finish.refund:
            self.telemetry.credits("refunded", 1)

    def released(self, task_ids: Sequence[int]) -> None:
        for task_id in task_ids:
            self._created_at.pop(task_id, None)


def video_finished(telemetry: Telemetry, finished: VideoFinished) -> None:
    """Count a video task like an image's: outcome, stages, total, refund."""
    telemetry.task_finished(finished.succeeded, finished.error_code)
    stages = finished.stages
    spent: tuple[tuple[Stage, int | None], ...] = (
        ("fetch", stages.fetch_ms),
        ("decode", stages.decode_ms),
        ("detect", stages.detect_ms),
    )
    for stage, ms in spent:
        if ms is not None:
            telemetry.stage(stage, ms / 1000)
    telemetry.stage("total", finished.total_ms / 1000)
    if finished.refunded:  # the reserved frames not analysed (all, on failure)
        telemetry.credits("refunded", finished.refunded)
