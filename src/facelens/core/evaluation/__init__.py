"""Accuracy and speed measurement: the WIDER FACE protocol and timing statistics."""

from facelens.core.evaluation.protocol import (
    SETTINGS,
    EvalImage,
    average_precision,
    evaluate_widerface,
    normalize_scores,
)
from facelens.core.evaluation.timing import TimingStats, timing_stats

__all__ = [
    "SETTINGS",
    "EvalImage",
    "TimingStats",
    "average_precision",
    "evaluate_widerface",
    "normalize_scores",
    "timing_stats",
]
