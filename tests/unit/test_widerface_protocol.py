"""The official WIDER FACE protocol on hand-made cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelens.adapters.widerface import read_predictions, write_predictions
from facelens.core.evaluation import EvalImage, evaluate_widerface, normalize_scores, timing_stats
from facelens.core.evaluation.protocol import bbox_overlaps, voc_ap

FACES = np.array([[10, 10, 40, 50], [100, 20, 30, 40], [200, 200, 20, 20]], dtype=np.float64)


def truth(keep: list[int] | None = None) -> list[EvalImage]:
    """One image with three faces; `keep` lists the counted ones (default: all)."""
    counted = np.asarray(keep if keep is not None else [0, 1, 2], dtype=np.int64)
    return [EvalImage("e/img", FACES, {s: counted for s in ("easy", "medium", "hard")})]


def rows(boxes: np.ndarray, scores: list[float]) -> np.ndarray:
    return np.column_stack([boxes, np.asarray(scores, dtype=np.float64)])


def test_a_perfect_detector_scores_one() -> None:
    ap = evaluate_widerface({"e/img": rows(FACES, [0.9, 0.8, 0.7])}, truth())
    assert ap == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})


def test_an_empty_detector_scores_zero() -> None:
    assert evaluate_widerface({"e/img": np.zeros((0, 5))}, truth())["hard"] == 0.0
    assert evaluate_widerface({}, truth())["easy"] == 0.0


def test_a_detection_of_an_ignored_face_is_neither_hit_nor_miss() -> None:
    counted_only = evaluate_widerface({"e/img": rows(FACES[:1], [0.9])}, truth([0]))
    with_ignored = evaluate_widerface({"e/img": rows(FACES[:2], [0.9, 0.95])}, truth([0]))
    assert counted_only["easy"] == pytest.approx(1.0)
    assert with_ignored["easy"] == pytest.approx(1.0)  # the better-scored ignored hit costs nothing
    only_ignored = evaluate_widerface({"e/img": rows(FACES[1:2], [0.9])}, truth([0]))
    assert only_ignored["easy"] == 0.0


def test_a_half_right_detector_is_in_between() -> None:
    false_box = np.array([[500, 500, 30, 30]], dtype=np.float64)
    preds = rows(np.vstack([FACES[:1], false_box, FACES[1:2]]), [0.9, 0.8, 0.7])
    ap = evaluate_widerface({"e/img": preds}, truth([0, 1]))
    # P/R: (1, 1/2) at 0.9, (1/2, 1/2) at 0.8, (2/3, 1) at 0.7 -> 1/2 * 1 + 1/2 * 2/3
    assert ap["easy"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    half = evaluate_widerface({"e/img": rows(FACES[:1], [0.9])}, truth([0, 1]))
    assert half["easy"] == pytest.approx(0.5)


def test_a_duplicate_detection_is_a_false_positive() -> None:
    preds = rows(np.vstack([FACES[:1], FACES[:1] + 1]), [0.9, 0.8])
    ap = evaluate_widerface({"e/img": preds}, truth([0]))
    assert ap["easy"] == pytest.approx(1.0)  # the duplicate scores lower: envelope keeps 1
    worse = evaluate_widerface(
        {"e/img": rows(np.vstack([FACES[:1] + 1, FACES[:1]]), [0.8, 0.9])}, truth([0, 1])
    )
    assert worse["easy"] == pytest.approx(0.5)


def test_iou_below_half_is_a_miss_and_the_plus_one_convention_holds() -> None:
    shifted = FACES[:1] + np.array([[25, 0, 0, 0]])  # overlap 15/40 wide -> IoU < 0.5
    assert evaluate_widerface({"e/img": rows(shifted, [0.9])}, truth([0]))["easy"] == 0.0
    assert bbox_overlaps(np.array([[0.0, 0, 9, 9]]), np.array([[0.0, 0, 9, 9]]))[0, 0] == 1.0
    assert bbox_overlaps(np.array([[0.0, 0, 0, 0]]), np.array([[0.0, 0, 0, 0]]))[0, 0] == 1.0


def test_predictions_are_scored_in_descending_order_whatever_the_input_order() -> None:
    in_order = rows(np.vstack([FACES[:1], FACES[1:2] + 200]), [0.9, 0.2])
    reversed_rows = in_order[::-1].copy()
    a = evaluate_widerface({"e/img": in_order}, truth([0, 1]))
    b = evaluate_widerface({"e/img": reversed_rows}, truth([0, 1]))
    assert a == b


def test_scores_are_min_max_normalised_over_all_images() -> None:
    out = normalize_scores(
        {"a": rows(FACES[:2], [0.2, 0.6]), "b": rows(FACES[:1], [0.4]), "c": np.zeros((0, 5))}
    )
    assert out["a"][:, 4].tolist() == pytest.approx([0.0, 1.0])
    assert out["b"][:, 4].tolist() == pytest.approx([0.5])
    assert out["a"][:, :4].tolist() == FACES[:2].tolist()


def test_voc_ap_takes_the_precision_envelope() -> None:
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 0.75])) == pytest.approx(0.875)


def test_images_without_faces_only_contribute_their_count() -> None:
    images = [*truth(), EvalImage("e/none", np.zeros((0, 4)), {})]
    preds = {"e/img": rows(FACES, [0.9, 0.8, 0.7]), "e/none": rows(FACES[:1], [0.99])}
    assert evaluate_widerface(preds, images)["hard"] == pytest.approx(1.0)


def test_predictions_round_trip_through_the_submission_format(tmp_path: Path) -> None:
    preds = rows(FACES[:2], [0.91234, 0.5])
    path = write_predictions(tmp_path, "0--Parade/0_Parade_1", preds)
    assert path == tmp_path / "0--Parade" / "0_Parade_1.txt"
    lines = path.read_text().splitlines()
    assert lines[:3] == ["0_Parade_1", "2", "10.0 10.0 40.0 50.0 0.91234"]
    back = read_predictions(tmp_path)
    assert back["0--Parade/0_Parade_1"] == pytest.approx(preds)


def test_timing_stats() -> None:
    stats = timing_stats([0.1, 0.2, 0.3])
    assert stats.count == 3
    assert stats.median_ms == pytest.approx(200)
    assert stats.images_per_s == pytest.approx(5.0)
    assert timing_stats([]).count == 0
