"""Value types of what an account reads and does for itself (console and API alike):
pages of its tasks, redelivery of a callback, usage per day, its own keys."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from facelens.core.domain import TaskStatus, TaskView

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which of an account's tasks to list: newest first, ids below `before_id`."""

    status: TaskStatus | None = None
    creation_id: str | None = None
    before_id: int | None = None


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[TaskView]
    next_before_id: int | None
    """Pass as `before_id` for the next (older) page; None on the last page."""


class Redelivery(enum.StrEnum):
    """What asking for a task's complete callback again did."""

    SCHEDULED = "scheduled"
    NOT_FOUND = "not_found"
    """No such task in this account."""
    NOT_FINISHED = "not_finished"
    """The task has no complete callback yet (still queued or running)."""
    PENDING = "pending"
    """Its complete callback is still being delivered (or already redelivered)."""


@dataclass(frozen=True, slots=True)
class DayUsage:
    """One UTC day: tasks created that day by their status now, credits charged and
    refunded that day."""

    day: int
    """Days since 1970-01-01 (UTC)."""
    tasks_by_status: dict[str, int] = field(default_factory=dict)
    credits_charged: int = 0
    credits_refunded: int = 0
