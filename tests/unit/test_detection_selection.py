"""Filters, largest-first order, max_faces and the Face objects."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.core.detection.boxes import Detections
from facelens.core.detection.selection import (
    filter_detections,
    largest_first,
    size_calibrated,
    to_faces,
    without_face_parts,
)
from facelens.core.domain import LANDMARK_NAMES


def make() -> Detections:
    boxes = np.array(
        [[0, 0, 10, 10], [0, 0, 30, 40], [5, 5, 25, 25], [0, 0, 20, 20]], dtype=np.float64
    )
    scores = np.array([0.9, 0.6, 0.3, 0.8])
    marks = np.arange(4 * 5 * 2, dtype=np.float64).reshape(4, 5, 2)
    return Detections(boxes, scores, marks)


def test_score_threshold_is_inclusive() -> None:
    assert filter_detections(make(), 0.6).scores.tolist() == [0.9, 0.6, 0.8]


def test_min_face_size_uses_the_longer_side() -> None:
    kept = filter_detections(make(), 0.0, min_face_size=20)
    assert kept.scores.tolist() == [0.6, 0.3, 0.8]


def test_largest_first_breaks_ties_by_score() -> None:
    ordered = largest_first(make())
    assert ordered.scores.tolist() == [0.6, 0.8, 0.3, 0.9]  # 20x20 tie: 0.8 before 0.3


def test_faces_carry_box_score_and_named_landmarks() -> None:
    faces = to_faces(largest_first(make()))
    assert [f.area for f in faces] == [1200, 400, 400, 100]
    top = faces[0]
    assert (top.x, top.y, top.width, top.height, top.score) == (0, 0, 30, 40, 0.6)
    assert list(top.landmarks) == list(LANDMARK_NAMES)
    assert top.landmarks["left_eye"] == (10.0, 11.0)
    assert isinstance(top.landmarks["nose"][0], float)


def test_max_faces_keeps_the_first_ones_and_landmarks_can_be_dropped() -> None:
    faces = to_faces(largest_first(make()), landmarks=False, max_faces=2)
    assert [f.score for f in faces] == [0.6, 0.8]
    assert all(f.landmarks == {} for f in faces)
    assert len(to_faces(make(), max_faces=0)) == 4


def test_face_json_rounds_like_the_hosted_api() -> None:
    face = to_faces(make())[0]
    assert face.to_json()["score"] == pytest.approx(0.9)
    assert face.to_json()["landmarks"]["left_eye"] == [0.0, 1.0]


def test_size_calibration_lowers_small_faces_linearly_and_leaves_large_ones() -> None:
    boxes = np.array([[0, 0, 0, 0], [0, 0, 32, 16], [0, 0, 64, 64], [0, 0, 100, 90]], dtype=float)
    dets = Detections(boxes, np.full(4, 0.9), np.zeros((4, 5, 2)))
    out = size_calibrated(dets, 64.0, 0.6)
    assert out.scores.tolist() == pytest.approx([0.9 * 0.6, 0.9 * 0.8, 0.9, 0.9])
    assert out.boxes is dets.boxes
    assert size_calibrated(dets, 0.0, 0.6) is dets
    # scores at or above `below` (the default threshold) are kept as they are
    mixed = Detections(boxes, np.array([0.5, 0.49, 0.3, 0.2]), np.zeros((4, 5, 2)))
    kept = size_calibrated(mixed, 64.0, 0.6, below=0.5)
    assert kept.scores.tolist() == pytest.approx([0.5, 0.49 * 0.8, 0.3, 0.2])


def boxes_scored(rows: list[tuple[float, float, float, float, float]]) -> Detections:
    array = np.array(rows, dtype=np.float64)
    return Detections(array[:, :4], array[:, 4], np.zeros((len(rows), 5, 2)))


def test_a_part_inside_a_larger_better_face_is_dropped() -> None:
    face = (0, 0, 100, 100, 0.9)
    eye = (10, 10, 40, 40, 0.6)  # entirely inside, a tenth of the area
    neighbour = (90, 0, 130, 40, 0.7)  # a quarter inside only: another face
    kept = without_face_parts(boxes_scored([face, eye, neighbour]))
    assert kept.scores.tolist() == [0.9, 0.7]


def test_a_part_scoring_above_the_face_or_close_in_size_is_kept() -> None:
    confident_small = [(0, 0, 100, 100, 0.6), (10, 10, 40, 40, 0.9)]
    assert len(without_face_parts(boxes_scored(confident_small))) == 2
    similar_size = [(0, 0, 100, 100, 0.9), (5, 5, 85, 85, 0.6)]  # 64 % of the area
    assert len(without_face_parts(boxes_scored(similar_size))) == 2
    assert len(without_face_parts(Detections.empty())) == 0
