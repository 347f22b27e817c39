"""The official WIDER FACE evaluation, as pure functions.

A line-for-line port of the reference Python evaluation (`evaluation.py` of the
WiderFace-Evaluation tool, itself a port of the official MATLAB `eval_tools`), with the
per-threshold loop vectorised. Kept faithful on purpose, quirks included, so numbers
are comparable with published ones:

* IoU uses the "+1" pixel convention of the original `bbox_overlaps`.
* Each detection is matched to its best-overlapping ground-truth face only; a second
  detection of an already found face is a false positive.
* Only the faces in a setting's `gt_list` count. A detection whose best match is a face
  outside the list (an "ignored" face) is neither a hit nor a false positive.
* Images without ground truth, or without detections, contribute only their face count.
* Scores are min-max normalised over all detections of the whole run, the PR curve is
  sampled at 1000 thresholds, and AP is the VOC (precision-envelope) area.

Detections of one image must be scored in descending order: `image_eval` walks them in
that order, so this module sorts them first (the reference relies on files written in
that order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SETTINGS: tuple[str, ...] = ("easy", "medium", "hard")
THRESHOLDS = 1000
IOU_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class EvalImage:
    """One image's ground truth: boxes (N, 4) as x, y, w, h and, per setting, the
    0-based indices of the faces that count."""

    key: str
    boxes: FloatArray
    keep: Mapping[str, IntArray] = field(default_factory=dict)


def bbox_overlaps(boxes: FloatArray, query: FloatArray) -> FloatArray:
    """(N, K) IoU of x1,y1,x2,y2 boxes with the "+1" convention of the reference."""
    area_q = (query[:, 2] - query[:, 0] + 1) * (query[:, 3] - query[:, 1] + 1)
    area_b = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    iw = np.minimum(boxes[:, None, 2], query[None, :, 2]) - np.maximum(
        boxes[:, None, 0], query[None, :, 0]
    )
    ih = np.minimum(boxes[:, None, 3], query[None, :, 3]) - np.maximum(
        boxes[:, None, 1], query[None, :, 1]
    )
    iw = iw + 1
    ih = ih + 1
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = area_b[:, None] + area_q[None, :] - inter
    out: FloatArray = np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return out


def image_eval(
    pred: FloatArray, gt: FloatArray, counted: npt.NDArray[np.bool_], iou_thresh: float
) -> tuple[FloatArray, FloatArray]:
    """Per detection (in the given order): the cumulative count of found faces, and
    1 for a proposal that counts / -1 for one matched to an ignored face.

    `pred` is (N, 5) x, y, w, h, score; `gt` (K, 4) x, y, w, h; `counted` (K,) marks
    the faces of the setting (the reference's `ignore` array, where 1 means counted).
    """
    pred_xyxy = pred[:, :4].copy()
    pred_xyxy[:, 2:] += pred_xyxy[:, :2]
    gt_xyxy = gt.copy()
    gt_xyxy[:, 2:] += gt_xyxy[:, :2]
    overlaps = bbox_overlaps(pred_xyxy, gt_xyxy)
    recall = np.zeros(gt.shape[0])
    proposals = np.ones(pred.shape[0])
    pred_recall = np.zeros(pred.shape[0])
    for h in range(pred.shape[0]):
        best = int(overlaps[h].argmax())
        if overlaps[h, best] >= iou_thresh:
            if not counted[best]:
                recall[best] = -1
                proposals[h] = -1
            elif recall[best] == 0:
                recall[best] = 1
        pred_recall[h] = np.count_nonzero(recall == 1)
    return pred_recall, proposals


def img_pr_info(
    thresh_num: int, scores: FloatArray, proposals: FloatArray, pred_recall: FloatArray
) -> FloatArray:
    """(thresh_num, 2): proposals counted and faces found at each threshold.

    Threshold t is 1 - (t + 1) / thresh_num; like the reference, it takes the last
    detection scoring >= the threshold (scores are in descending order) and counts
    the proposals up to it.
    """
    thresholds = 1.0 - (np.arange(thresh_num) + 1) / thresh_num
    # number of detections with score >= threshold, for descending scores
    above = np.searchsorted(-scores, -thresholds, side="right")
    counted_so_far = np.concatenate([[0.0], np.cumsum(proposals == 1)])
    info = np.zeros((thresh_num, 2))
    present = above > 0
    info[present, 0] = counted_so_far[above[present]]
    info[present, 1] = pred_recall[above[present] - 1]
    return info


def dataset_pr_info(pr_curve: FloatArray, count_face: int) -> FloatArray:
    """Precision (found / proposals) and recall (found / faces) per threshold.

    Thresholds with no proposal give 0/0; the reference yields NaN there, which never
    reaches the AP (recall is 0 at those thresholds), so it is set to 0 quietly.
    """
    out = np.zeros_like(pr_curve)
    proposals = pr_curve[:, 0]
    out[:, 0] = np.divide(
        pr_curve[:, 1], proposals, out=np.zeros_like(proposals), where=proposals > 0
    )
    out[:, 1] = pr_curve[:, 1] / max(count_face, 1)
    return out


def voc_ap(rec: FloatArray, prec: FloatArray) -> float:
    """Area under the precision envelope, summed where recall changes (VOC style)."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def normalize_scores(predictions: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    """Scores min-max normalised over all images (copies; x, y, w, h untouched).

    The reference starts from max 0 and min 1, so scores inside [0, 1] behave as plain
    min-max; a run where every score is equal keeps them unchanged.
    """
    non_empty = [p[:, 4] for p in predictions.values() if len(p)]
    low = min([1.0, *[float(s.min()) for s in non_empty]])
    high = max([0.0, *[float(s.max()) for s in non_empty]])
    span = high - low
    out: dict[str, FloatArray] = {}
    for key, pred in predictions.items():
        copy = np.asarray(pred, dtype=np.float64).reshape(-1, 5).copy()
        if len(copy) and span > 0:
            copy[:, 4] = (copy[:, 4] - low) / span
        out[key] = copy
    return out


def average_precision(
    predictions: Mapping[str, FloatArray],
    ground_truth: Sequence[EvalImage],
    setting: str,
    iou_thresh: float = IOU_THRESHOLD,
    thresh_num: int = THRESHOLDS,
) -> float:
    """AP of one setting; `predictions` maps `EvalImage.key` to (N, 5) x, y, w, h, score
    with scores already normalised (see `normalize_scores`). Missing keys = no detection."""
    pr_curve = np.zeros((thresh_num, 2))
    count_face = 0
    for image in ground_truth:
        keep = image.keep.get(setting, np.zeros(0, dtype=np.int64))
        count_face += len(keep)
        pred = predictions.get(image.key)
        if pred is None or len(pred) == 0 or len(image.boxes) == 0:
            continue
        pred = pred[np.argsort(-pred[:, 4], kind="stable")]
        counted = np.zeros(len(image.boxes), dtype=bool)
        counted[keep] = True
        pred_recall, proposals = image_eval(pred, image.boxes, counted, iou_thresh)
        pr_curve += img_pr_info(thresh_num, pred[:, 4], proposals, pred_recall)
    curve = dataset_pr_info(pr_curve, count_face)
    return voc_ap(curve[:, 1], curve[:, 0])


def evaluate_widerface(
    predictions: Mapping[str, FloatArray],
    ground_truth: Sequence[EvalImage],
    iou_thresh: float = IOU_THRESHOLD,
) -> dict[str, float]:
    """AP for easy, medium and hard with the official protocol (scores normalised here)."""
    normalized = normalize_scores(predictions)
    return {
        setting: average_precision(normalized, ground_truth, setting, iou_thresh)
        for setting in SETTINGS
    }
