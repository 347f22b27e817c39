"""Box geometry and motion for `core.tracking`: IoU, proximity, assignment, a
constant-velocity Kalman filter on box centre and size, and camera-motion
compensation. Pure NumPy and SciPy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

FloatArray = npt.NDArray[np.float64]
Box = tuple[float, float, float, float]
"""x1, y1, x2, y2."""

MAX_CENTRE_DISTANCE = 1.5
"""Centre distance, in units of the track's mean side, for the fallback match."""


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU between every row of `a` (n, 4) and of `b` (m, 4), boxes as x1 y1 x2 y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: FloatArray = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    return out


def proximity_matrix(tracks: FloatArray, faces: FloatArray) -> FloatArray:
    """1 - centre distance / (MAX_CENTRE_DISTANCE * track side), 0 when sizes differ 2x."""
    if len(tracks) == 0 or len(faces) == 0:
        return np.zeros((len(tracks), len(faces)))
    tc = (tracks[:, :2] + tracks[:, 2:]) / 2
    fc = (faces[:, :2] + faces[:, 2:]) / 2
    tside = np.sqrt(np.prod(tracks[:, 2:] - tracks[:, :2], axis=1).clip(1e-9))
    fside = np.sqrt(np.prod(faces[:, 2:] - faces[:, :2], axis=1).clip(1e-9))
    dist = np.linalg.norm(tc[:, None, :] - fc[None, :, :], axis=2)
    near = 1.0 - dist / (MAX_CENTRE_DISTANCE * tside[:, None])
    ratio = fside[None, :] / tside[:, None]
    out: FloatArray = np.where((ratio > 0.5) & (ratio < 2.0), near.clip(0, None), 0.0)
    return out


def assign(similarity: FloatArray, minimum: float) -> list[tuple[int, int]]:
    """Optimal one-to-one pairs (row, column) with similarity >= `minimum`."""
    if similarity.size == 0:
        return []
    rows, cols = linear_sum_assignment(-similarity)
    return [
        (int(r), int(c)) for r, c in zip(rows, cols, strict=True) if similarity[r, c] >= minimum
    ]


class KalmanBox:
    """Constant-velocity Kalman filter on (cx, cy, w, h) with time in seconds.

    Noise scales with the box height so small and large faces behave alike (as
    SORT/ByteTrack's xyah filter); the process noise grows with the elapsed time.
    """

    POS_NOISE = 0.05
    VEL_NOISE = 1.0
    """Per-second std of velocity change, in box heights per second."""
    VEL_START = 3.0
    """Std of a new track's velocity in box heights per second: a camera pan moves
    faces several of their own heights a second."""

    def __init__(self, box: Box) -> None:
        x1, y1, x2, y2 = box
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        self.mean: FloatArray = np.array([(x1 + x2) / 2, (y1 + y2) / 2, w, h, 0, 0, 0, 0], float)
        p = self.POS_NOISE * h
        v = self.VEL_START * h
        self.cov: FloatArray = np.diag([p, p, p, p, v, v, v / 4, v / 4]) ** 2

    def predict(self, dt: float) -> None:
        f = np.eye(8)
        f[:4, 4:] = np.eye(4) * dt
        h = max(self.mean[3], 1.0)
        q_pos = (self.POS_NOISE * h) ** 2 * dt
        q_vel = (self.VEL_NOISE * h) ** 2 * dt
        q = np.diag([q_pos] * 4 + [q_vel] * 4)
        self.mean = f @ self.mean
        self.mean[2:4] = np.maximum(self.mean[2:4], 1.0)
        self.cov = f @ self.cov @ f.T + q

    def update(self, box: Box) -> None:
        x1, y1, x2, y2 = box
        z = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
        r = np.eye(4) * (self.POS_NOISE * max(z[3], 1.0)) ** 2
        hm = np.eye(4, 8)
        s = hm @ self.cov @ hm.T + r
        gain = self.cov @ hm.T @ np.linalg.inv(s)
        self.mean = self.mean + gain @ (z - hm @ self.mean)
        self.cov = (np.eye(8) - gain @ hm) @ self.cov

    def box(self) -> Box:
        cx, cy, w, h = (float(v) for v in self.mean[:4])
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


CAMERA_IOU = 0.3
"""IoU at which a moved prediction counts as lined up with a face."""
CAMERA_ANCHORS = 3
"""Faces tried per track as the anchor of a camera-motion hypothesis (the nearest)."""
CAMERA_TRACKS = 8
"""Tracks tried as anchors (the largest: their boxes say the most about the motion),
so a crowd of 150 faces costs 24 hypotheses, not 450."""
CAMERA_SETTLED = 0.8
"""No hypothesis is tried when the unmoved predictions already meet this share of the
faces (or tracks, whichever are fewer)."""


def _lined_up(moved: FloatArray, faces: FloatArray) -> tuple[int, float]:
    """Tracks whose moved box meets some face at IoU >= CAMERA_IOU, and their IoU sum
    (no one-to-one assignment: a cheap score, the real matching comes after)."""
    best = iou_matrix(moved, faces).max(axis=1)
    hits = best >= CAMERA_IOU
    return int(np.count_nonzero(hits)), float(best[hits].sum())


def camera_motion(predicted: FloatArray, faces: FloatArray) -> FloatArray:
    """`predicted` moved by the shift and zoom that lines most of them up with `faces`.

    A camera pan or zoom moves every face alike, by more than the Kalman filters
    (each knowing only its own face) expect when the pan speeds up or turns: at
    1000 ms two neighbours can each land on the other's predicted box. As in
    BoT-SORT's camera-motion compensation, but from the boxes alone: each hypothesis
    maps one track onto one nearby face (shift plus scale about it) and moves all
    predictions the same way; the one lining up the most tracks (then the highest
    IoU sum) wins if it beats the unmoved predictions. Needs two tracks and two faces,
    and is skipped when the unmoved predictions already line up 80 % of them;
    independent motion keeps the unmoved predictions, which then line up best.
    """
    if len(predicted) < 2 or len(faces) < 2:
        return predicted
    best, best_score = predicted, _lined_up(predicted, faces)
    if best_score[0] >= CAMERA_SETTLED * min(len(predicted), len(faces)):
        return predicted  # the filters already explain the frame (the usual case)
    tc = (predicted[:, :2] + predicted[:, 2:]) / 2
    twh = predicted[:, 2:] - predicted[:, :2]
    fc = (faces[:, :2] + faces[:, 2:]) / 2
    tside = np.sqrt(np.prod(twh, axis=1).clip(1e-9))
    fside = np.sqrt(np.prod(faces[:, 2:] - faces[:, :2], axis=1).clip(1e-9))
    dist = np.linalg.norm(tc[:, None, :] - fc[None, :, :], axis=2) / tside[:, None]
    for i in np.argsort(-tside)[:CAMERA_TRACKS]:
        for j in np.argsort(dist[i])[:CAMERA_ANCHORS]:
            scale = fside[j] / tside[i]
            if not 0.67 < scale < 1.5 or dist[i, j] > 3 * MAX_CENTRE_DISTANCE:
                continue
            centres = fc[j] + scale * (tc - tc[i])
            half = scale * twh / 2
            moved = np.column_stack([centres - half, centres + half])
            score = _lined_up(moved, faces)
            if score > best_score:
                best, best_score = moved, score
    return best
