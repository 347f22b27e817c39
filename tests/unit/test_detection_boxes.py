"""NMS, IoU and weighted box fusion on hand-made boxes."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.core.detection.boxes import Detections, fuse, fuse_into, iou_one_to_many, nms


def dets(boxes: list[list[float]], scores: list[float]) -> Detections:
    b = np.asarray(boxes, dtype=np.float64)
    marks = np.repeat(b[:, None, :2], 5, axis=1)  # landmarks at each box's corner
    return Detections(b, np.asarray(scores, dtype=np.float64), marks)


def test_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    box = np.array([0.0, 0.0, 10.0, 10.0])
    others = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float64)
    assert iou_one_to_many(box, others) == pytest.approx([1.0, 0.0, 50 / 150])


def test_iou_with_a_degenerate_box_is_zero_not_nan() -> None:
    out = iou_one_to_many(np.array([1.0, 1.0, 1.0, 1.0]), np.array([[1.0, 1.0, 1.0, 1.0]]))
    assert out.tolist() == [0.0]


def test_nms_keeps_the_best_of_each_cluster_best_first() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]], dtype=np.float64
    )
    scores = np.array([0.8, 0.9, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]


def test_nms_threshold_is_inclusive_and_low_overlap_survives() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float64)  # IoU 1/3
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 1 / 3).tolist() == [0]


def test_nms_of_nothing_is_nothing() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.3).tolist() == []


def test_nms_ties_keep_the_earlier_index() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float64)
    assert nms(boxes, np.array([0.5, 0.5]), 0.3).tolist() == [0]


def test_fuse_averages_a_cluster_by_score_and_keeps_the_best_score() -> None:
    merged = fuse(dets([[0, 0, 10, 10], [2, 2, 12, 12], [40, 40, 50, 50]], [0.75, 0.25, 0.5]), 0.4)
    assert len(merged) == 2
    assert merged.boxes[0] == pytest.approx([0.5, 0.5, 10.5, 10.5])
    assert merged.landmarks[0, 0] == pytest.approx([0.5, 0.5])
    assert merged.scores.tolist() == pytest.approx([0.75, 0.5])
    assert merged.boxes[1] == pytest.approx([40, 40, 50, 50])


def test_fuse_penalises_lone_boxes_only() -> None:
    merged = fuse(
        dets([[0, 0, 10, 10], [1, 1, 11, 11], [40, 40, 50, 50]], [0.8, 0.6, 0.8]), 0.4, 0.5
    )
    assert merged.scores.tolist() == pytest.approx([0.8, 0.4])


def test_fuse_of_nothing_is_empty() -> None:
    assert len(fuse(Detections.empty(), 0.4)) == 0


def test_scaled_and_clipped_map_coordinates() -> None:
    d = dets([[-4, 10, 40, 30]], [0.9]).scaled(2.0)
    assert d.boxes[0] == pytest.approx([-2, 5, 20, 15])
    assert d.landmarks[0, 0] == pytest.approx([-2, 5])
    clipped = d.clipped(18, 100)
    assert clipped.boxes[0] == pytest.approx([0, 5, 18, 15])
    assert clipped.landmarks[0, 0] == pytest.approx([-2, 5])  # landmarks are not clipped


def test_candidates_centred_in_the_padding_are_dropped() -> None:
    d = dets([[85, 10, 105, 30], [95, 10, 125, 30], [-30, 0, 10, 10]], [0.9, 0.8, 0.7])
    assert d.centred_within(100, 100).scores.tolist() == [0.9]


def test_fuse_by_noisy_or_rewards_agreement_and_keeps_lone_scores() -> None:
    merged = fuse(
        dets([[0, 0, 10, 10], [1, 1, 11, 11], [40, 40, 50, 50]], [0.6, 0.5, 0.7]),
        0.4,
        score="noisy_or",
    )
    assert merged.scores.tolist() == pytest.approx([0.7, 1 - 0.4 * 0.5])  # best leader first
    assert merged.boxes[1] == pytest.approx([5 / 11, 5 / 11, 10 + 5 / 11, 10 + 5 / 11])
    certain = fuse(dets([[0, 0, 10, 10], [0, 0, 10, 10]], [1.0, 0.5]), 0.4, score="noisy_or")
    assert 0.999 < float(certain.scores[0]) <= 1.0  # a score of 1 stays finite


def test_fuse_into_merges_only_the_candidates_an_extra_box_overlaps() -> None:
    marks = np.zeros((3, 5, 2))
    dets = Detections(
        np.array([[0, 0, 100, 100], [2, 2, 98, 98], [200, 200, 210, 210]], dtype=np.float64),
        np.array([0.8, 0.4, 0.3]),
        marks,
    )
    extra = Detections(np.array([[10, 10, 110, 110]], dtype=np.float64), np.array([0.8]), marks[:1])
    merged = fuse_into(dets, extra, 0.4)
    assert len(merged) == 2  # the two overlapping ones and the extra box became one
    small = merged.boxes[merged.scores == 0.3]
    assert small.tolist() == [[200, 200, 210, 210]]  # untouched
    fused = merged.boxes[merged.scores == 0.8][0]
    assert 0 < fused[0] < 10 and 100 < fused[2] < 110  # a weighted mean of the cluster
    assert fuse_into(dets, Detections.empty(), 0.4) is dets
    assert len(fuse_into(Detections.empty(), extra, 0.4)) == 1
