"""Candidate faces as arrays, and the two ways to merge overlapping ones.

A model decoder yields many overlapping candidates per face. `Detections` keeps them
as parallel arrays (boxes, scores, landmarks) so every step after decoding is a few
vectorised NumPy operations instead of a Python loop per candidate.

Merging: `nms` keeps the best box of each cluster (the standard, and what the models
were tuned with); `fuse` replaces each cluster by its score-weighted mean box, which
helps when candidates come from several scales or models and disagree slightly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
FusionScore = Literal["max", "noisy_or"]
"""How `fuse` scores a cluster: its best member, or the members' noisy-or."""
IndexArray = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Detections:
    """N candidate faces: `boxes` (N, 4) as x1, y1, x2, y2; `scores` (N,);
    `landmarks` (N, 5, 2) as x, y in `LANDMARK_NAMES` order.

    Coordinates are in whatever frame the producer used (tensor pixels right after
    decoding, original image pixels after `scaled`).
    """

    boxes: FloatArray
    scores: FloatArray
    landmarks: FloatArray

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def take(self, index: IndexArray | npt.NDArray[np.bool_]) -> Detections:
        """The subset selected by an index or boolean mask, in that order."""
        return Detections(self.boxes[index], self.scores[index], self.landmarks[index])

    def scaled(self, factor: float) -> Detections:
        """Every coordinate divided by `factor` (tensor pixels -> image pixels)."""
        return Detections(self.boxes / factor, self.scores, self.landmarks / factor)

    def clipped(self, width: float, height: float) -> Detections:
        """Boxes clipped to the image (landmarks are left alone: they may lie outside)."""
        boxes = self.boxes.copy()
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0.0, width)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0.0, height)
        return Detections(boxes, self.scores, self.landmarks)

    def centred_within(self, width: float, height: float) -> Detections:
        """Only the candidates whose box centre lies inside the image.

        Drops what a model reports from the letterbox padding, which clipping alone
        would turn into zero-area boxes on the image border.
        """
        cx = (self.boxes[:, 0] + self.boxes[:, 2]) / 2.0
        cy = (self.boxes[:, 1] + self.boxes[:, 3]) / 2.0
        return self.take((cx >= 0) & (cx < width) & (cy >= 0) & (cy < height))

    @property
    def widths(self) -> FloatArray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def heights(self) -> FloatArray:
        return self.boxes[:, 3] - self.boxes[:, 1]

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        return Detections(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
        )


def iou_one_to_many(box: FloatArray, boxes: FloatArray) -> FloatArray:
    """Intersection over union of one x1,y1,x2,y2 box with each of `boxes`."""
    return _Corners(boxes).iou(box, np.arange(boxes.shape[0]))


class _Corners:
    """Box columns and areas computed once, so each greedy step is a few array ops
    (NMS at an evaluation threshold runs thousands of steps per image)."""

    __slots__ = ("area", "x1", "x2", "y1", "y2")

    def __init__(self, boxes: FloatArray) -> None:
        self.x1, self.y1 = boxes[:, 0], boxes[:, 1]
        self.x2, self.y2 = boxes[:, 2], boxes[:, 3]
        self.area = np.clip(self.x2 - self.x1, 0.0, None) * np.clip(self.y2 - self.y1, 0.0, None)

    def iou(self, box: FloatArray, index: IndexArray) -> FloatArray:
        width = np.minimum(box[2], self.x2[index]) - np.maximum(box[0], self.x1[index])
        height = np.minimum(box[3], self.y2[index]) - np.maximum(box[1], self.y1[index])
        inter = np.maximum(width, 0.0) * np.maximum(height, 0.0)
        own = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
        union = own + self.area[index] - inter
        out: FloatArray = inter / np.maximum(union, 1e-12)
        return out


def _clusters(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> list[IndexArray]:
    """Greedy clusters, best-scored first: each is its leader followed by the boxes
    (not yet clustered) overlapping the leader with IoU >= `iou_threshold`."""
    corners = _Corners(boxes)
    order = np.argsort(-scores, kind="stable")
    clusters: list[IndexArray] = []
    while order.size:
        best = order[0]
        rest = order[1:]
        overlaps = corners.iou(boxes[best], rest)
        hit = overlaps >= iou_threshold
        clusters.append(np.concatenate([order[:1], rest[hit]]))
        order = rest[~hit]
    return clusters


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> IndexArray:
    """Greedy non-maximum suppression: indices kept, best score first.

    A box is dropped when its IoU with an already kept, better-scored box is at least
    `iou_threshold`. Ties keep the earlier index (stable sort) so results are
    deterministic.
    """
    leaders = [int(c[0]) for c in _clusters(boxes, scores, iou_threshold)]
    return np.asarray(leaders, dtype=np.intp)


def fuse(
    dets: Detections,
    iou_threshold: float,
    lone_penalty: float = 1.0,
    score: FusionScore = "max",
) -> Detections:
    """Weighted box fusion: each cluster becomes its score-weighted mean box.

    Clusters are formed greedily like NMS (best-scored box first, members with IoU >=
    `iou_threshold`). The fused box and landmarks are score-weighted means. The score
    is the cluster's best score (`score="max"`), or `"noisy_or"`: 1 - prod(1 - s), the
    chance that at least one member is right if each were an independent witness, so
    a face that several passes agree on outranks one seen once at the same score
    (on widerface-dev, two CenterFace passes: AP +1 easy, +0.5 medium, hard within
    0.002 of "max"). A cluster of one box keeps its score times `lone_penalty`.
    """
    clusters = _clusters(dets.boxes, dets.scores, iou_threshold)
    if not clusters:
        return Detections.empty()
    labels = np.empty(len(dets), dtype=np.intp)
    for n, members in enumerate(clusters):
        labels[members] = n
    leaders = np.asarray([c[0] for c in clusters], dtype=np.intp)
    sizes = np.bincount(labels, minlength=len(clusters))
    weights = dets.scores
    totals = np.bincount(labels, weights=weights, minlength=len(clusters))
    totals = np.where(totals > 0, totals, 1.0)

    def weighted_mean(values: FloatArray) -> FloatArray:
        flat = values.reshape(len(dets), -1)
        sums = np.stack(
            [
                np.bincount(labels, weights=weights * flat[:, k], minlength=len(clusters))
                for k in range(flat.shape[1])
            ],
            axis=1,
        )
        return (sums / totals[:, None]).reshape((len(clusters), *values.shape[1:]))

    if score == "noisy_or":
        doubt = np.log1p(-np.clip(dets.scores, 0.0, 1.0 - 1e-7))
        scores = -np.expm1(np.bincount(labels, weights=doubt, minlength=len(clusters)))
    else:
        scores = dets.scores[leaders]
    scores = scores * np.where(sizes == 1, lone_penalty, 1.0)
    return Detections(weighted_mean(dets.boxes), scores, weighted_mean(dets.landmarks))


def fuse_into(
    dets: Detections,
    extra: Detections,
    iou_threshold: float,
    lone_penalty: float = 1.0,
    score: FusionScore = "max",
) -> Detections:
    """`dets` with a few `extra` candidates fused in: like `fuse` over both, but only
    the candidates of `dets` overlapping an extra one (IoU >= `iou_threshold`) take
    part, the rest pass unchanged. A coarse pass adds a handful of large faces; fusing
    them this way costs microseconds, where `fuse` over an evaluation threshold's
    thousands of small candidates costs milliseconds."""
    if not len(extra):
        return dets
    if not len(dets):
        return extra
    near = np.zeros(len(dets), dtype=np.bool_)
    for box in extra.boxes:
        near |= iou_one_to_many(box, dets.boxes) >= iou_threshold
    merged = fuse(Detections.concat([dets.take(near), extra]), iou_threshold, lone_penalty, score)
    return Detections.concat([dets.take(~near), merged])
