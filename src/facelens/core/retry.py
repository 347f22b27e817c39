"""The callback retry schedule: pure arithmetic over attempt counts."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_SCHEDULE_S: tuple[float, ...] = (5.0, 30.0, 120.0, 300.0)
"""The hosted API's schedule: up to 4 retries, 5 s, 30 s, 120 s, 300 s after a failure."""


def parse_schedule(text: str) -> tuple[float, ...]:
    """`"5,30,120,300"` -> (5.0, 30.0, 120.0, 300.0); rejects negatives and junk."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    values = tuple(float(p) for p in parts)
    if any(v < 0 for v in values):
        raise ValueError("retry delays must be >= 0 seconds")
    return values


def next_attempt_at(attempts_made: int, failed_at_ms: int, schedule: Sequence[float]) -> int | None:
    """When to try again after the `attempts_made`-th attempt failed; None = give up.

    With the default schedule a delivery gets 1 + 4 = 5 attempts in all.
    """
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    return failed_at_ms + int(schedule[attempts_made - 1] * 1000)
