"""When to try again, as pure arithmetic: the callback retry schedule (attempt counts
to due times) and the back-off of loops that wait out an outage (`Backoff`)."""

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


class Backoff:
    """Exponential back-off for a loop that keeps trying something that may be down
    (the database, the LISTEN connection): wait `first_s` after a failure, double the
    wait after each further one up to `max_s`, and start again from `first_s` once a
    try succeeds. Doubling keeps a long outage to a few tries a minute per loop instead
    of one per poll; the cap bounds how late a loop notices that the outage is over.

    Pure state: the caller does the waiting (so one stop event can cut it short).
    """

    __slots__ = ("_first_s", "_max_s", "_next_s")

    def __init__(self, first_s: float, max_s: float) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._next_s = first_s

    def failed(self) -> float:
        """A try failed: how long to wait before the next one."""
        delay = self._next_s
        self._next_s = min(delay * 2, self._max_s)
        return delay

    def succeeded(self) -> None:
        """A try worked: the next failure waits `first_s` again."""
        self._next_s = self._first_s

    def delays(self, tries: int) -> tuple[float, ...]:
        """The waits between `tries` tries that all fail, from a fresh start."""
        fresh = Backoff(self._first_s, self._max_s)
        return tuple(fresh.failed() for _ in range(max(tries - 1, 0)))


STORE_RETRY_DELAYS_S: tuple[float, ...] = Backoff(0.5, 8.0).delays(6)
"""(0.5, 1, 2, 4, 8): the waits between the tries of a write that must not be lost
lightly (a batch of outcomes, a callback attempt) while the database is unreachable,
about 15 s in all. After the last try the caller gives up: the lease expires and the
work is redone elsewhere."""
