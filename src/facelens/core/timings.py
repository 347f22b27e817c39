"""Where a task's time went, as the query API shows it.

`queued_ms` and `total_ms` follow from the task's own timestamps (created, first
claimed, ended); the three analysis stages are measured by the worker and stored with
the outcome. A stage that did not run is null: a download that failed has a
`fetch_ms` and no `decode_ms`; a task still queued has only nulls.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMING_KEYS = ("queued_ms", "fetch_ms", "decode_ms", "detect_ms", "total_ms")


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Milliseconds spent in each analysis stage of the run that produced the outcome."""

    fetch_ms: int | None = None
    decode_ms: int | None = None
    detect_ms: int | None = None


NOT_MEASURED = StageTimes()


def timings_json(
    created_at_ms: int,
    started_at_ms: int | None,
    ended_at_ms: int | None,
    stages: StageTimes,
) -> dict[str, int | None]:
    """The `timings` object of GET /api/aigc/task/{id}, keys in `TIMING_KEYS` order."""
    return {
        "queued_ms": None if started_at_ms is None else max(0, started_at_ms - created_at_ms),
        "fetch_ms": stages.fetch_ms,
        "decode_ms": stages.decode_ms,
        "detect_ms": stages.detect_ms,
        "total_ms": None if ended_at_ms is None else max(0, ended_at_ms - created_at_ms),
    }
