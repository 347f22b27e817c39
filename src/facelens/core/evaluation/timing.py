"""Per-image timing statistics for evaluation and benchmark reports.

Medians, not means, are the headline: on a shared 2-core machine a few images that hit
a busy moment would otherwise dominate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TimingStats:
    count: int
    median_ms: float
    mean_ms: float
    p90_ms: float
    max_ms: float
    images_per_s: float
    """count / total seconds: throughput of this sequential run."""


def timing_stats(seconds: Sequence[float]) -> TimingStats:
    """Statistics of per-image durations given in seconds."""
    if not seconds:
        return TimingStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    total = float(ms.sum()) / 1000.0
    return TimingStats(
        count=len(ms),
        median_ms=float(np.median(ms)),
        mean_ms=float(ms.mean()),
        p90_ms=float(np.percentile(ms, 90)),
        max_ms=float(ms.max()),
        images_per_s=len(ms) / total if total > 0 else 0.0,
    )
