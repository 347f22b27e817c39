"""From merged candidates to the faces a caller gets: filter, order, cap.

The order of the steps is part of the contract: score threshold and minimum size
first, then largest first (ties by score), then `max_faces` keeps the largest ones.
"""

from __future__ import annotations

import numpy as np

from facelens.core.detection.boxes import Detections
from facelens.core.domain import LANDMARK_NAMES, Face


def face_sizes(dets: Detections) -> np.ndarray:
    """A face's size for `min_face_size`: the longer side of its box."""
    return np.maximum(dets.widths, dets.heights)


def size_calibrated(
    dets: Detections, small_px: float, floor: float, below: float = 1.0
) -> Detections:
    """Scores under `below` of faces smaller than `small_px` (longer side) scaled down
    linearly with their size, to `floor` at size 0 (see `families.ScalePass`).

    Scores at or above `below` (the default threshold) are left alone, so what a
    caller gets at that threshold does not change; only the ranking of the weaker
    candidates does.
    """
    if small_px <= 0 or floor >= 1.0 or not len(dets):
        return dets
    ramp = np.clip(face_sizes(dets) / small_px, 0.0, 1.0)
    lowered = dets.scores * (floor + (1.0 - floor) * ramp)
    scores = np.where(dets.scores < below, lowered, dets.scores)
    return Detections(dets.boxes, scores, dets.landmarks)


def filter_detections(
    dets: Detections, score_threshold: float, min_face_size: int | None = None
) -> Detections:
    """Candidates with score >= `score_threshold` and size >= `min_face_size`."""
    mask = dets.scores >= score_threshold
    if min_face_size:
        mask &= face_sizes(dets) >= float(min_face_size)
    return dets.take(mask)


_HOLDERS = 32
"""`without_face_parts` checks containment in the 32 largest candidates only."""


def without_face_parts(
    dets: Detections, inside: float = 0.7, area_ratio: float = 0.35
) -> Detections:
    """Candidates minus those that are part of a larger, better-scored face.

    On a face filling the frame, a model run at 1:1 also boxes an eye, a cheek or the
    lower half of the face; the coarse pass finds the face itself. Overlap measures
    miss the part (its IoU with the face is small), so the test is containment: at
    least `inside` of the candidate's area lies within a candidate whose area is over
    1 / `area_ratio` times its own and whose score is at least its own. Real faces
    are practically never boxed inside another face, so AP is unchanged (widerface-dev).
    """
    if len(dets) < 2:
        return dets
    boxes, scores = dets.boxes, dets.scores
    area = np.clip(dets.widths, 0.0, None) * np.clip(dets.heights, 0.0, None)
    # Only the largest can hold another: N x 32, not N x N, at an evaluation
    # threshold's thousands of candidates.
    holders = np.argsort(-area, kind="stable")[:_HOLDERS]
    # [i, j]: the share of candidate i's area inside holder j
    width = np.minimum(boxes[:, None, 2], boxes[None, holders, 2]) - np.maximum(
        boxes[:, None, 0], boxes[None, holders, 0]
    )
    height = np.minimum(boxes[:, None, 3], boxes[None, holders, 3]) - np.maximum(
        boxes[:, None, 1], boxes[None, holders, 1]
    )
    inter = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
    covered = inter >= inside * area[:, None]
    smaller = area[:, None] < area_ratio * area[None, holders]
    weaker = scores[:, None] <= scores[None, holders]
    part = (covered & smaller & weaker).any(axis=1)
    return dets.take(~part)


def largest_first(dets: Detections) -> Detections:
    """Sorted by box area, largest first; equal areas by score, best first."""
    order = np.lexsort((-dets.scores, -(dets.widths * dets.heights)))
    return dets.take(order)


def to_faces(dets: Detections, landmarks: bool = True, max_faces: int | None = None) -> list[Face]:
    """`Face` objects in the given order, at most `max_faces` (None or <= 0: all)."""
    count = len(dets) if not max_faces or max_faces <= 0 else min(max_faces, len(dets))
    faces = []
    for i in range(count):
        x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
        points = (
            {
                name: (float(dets.landmarks[i, k, 0]), float(dets.landmarks[i, k, 1]))
                for k, name in enumerate(LANDMARK_NAMES)
            }
            if landmarks
            else {}
        )
        faces.append(
            Face(
                x=x1,
                y=y1,
                width=x2 - x1,
                height=y2 - y1,
                score=float(dets.scores[i]),
                landmarks=points,
            )
        )
    return faces
