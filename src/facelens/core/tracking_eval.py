"""How well tracks follow true faces: recall, ID consistency, ID switches. Pure.

Used by the model test and `bench/video_tracking.py` on clips whose every frame's true
boxes are known (tests/support/clips.py). Per analysed frame, detections are matched
one-to-one to ALL true faces meeting the frame (Hungarian on IoU >= `iou`), so a
detection on a small or cut-off face is not counted against anything; only the
eligible faces (fully in view, longer side >= the size floor: the same size measure
as `min_face_size`) count for recall and identity.

* recall: matched eligible faces / eligible faces, over all frames.
* ID consistency: for each true face, the share of its matches (eligible frames)
  carrying that face's most frequent track id, pooled over faces; `worst` is the
  lowest single face's share (faces matched at least twice).
* ID switches: times a true face's track id differs from its previous match's.
* purity: the converse of consistency, so one id stuck on every face cannot pass:
  for each track id, the share of its matches on its most frequent true face, pooled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from facelens.core.tracking import assign, iou_matrix

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FrameTruth:
    boxes: FloatArray
    """(N, 4) x, y, w, h of the true faces meeting the frame."""
    face_ids: npt.NDArray[np.int64]
    eligible: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class FrameTracks:
    boxes: FloatArray
    """(M, 4) x, y, w, h of the detections."""
    track_ids: Sequence[int]


@dataclass(frozen=True, slots=True)
class TrackingScore:
    frames: int
    eligible: int
    found: int
    matches: int
    consistent: int
    id_switches: int
    worst: float
    faces: int
    """True faces that were eligible at least once."""
    pure: int = 0
    """Matches whose track id's most frequent true face is theirs (see `purity`)."""

    @property
    def recall(self) -> float:
        return self.found / self.eligible if self.eligible else 1.0

    @property
    def id_consistency(self) -> float:
        return self.consistent / self.matches if self.matches else 1.0

    @property
    def purity(self) -> float:
        return self.pure / self.matches if self.matches else 1.0


def _corners(xywh: FloatArray) -> FloatArray:
    boxes = np.asarray(xywh, float).reshape(-1, 4)
    out: FloatArray = np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
    return out


def score_tracking(
    truth: Sequence[FrameTruth], results: Sequence[FrameTracks], iou: float = 0.5
) -> TrackingScore:
    if len(truth) != len(results):
        raise ValueError("one result per analysed frame")
    eligible = found = 0
    ids_of: dict[int, list[int]] = {}
    for t, r in zip(truth, results, strict=True):
        eligible += int(np.count_nonzero(t.eligible))
        sim = iou_matrix(_corners(t.boxes), _corners(r.boxes))
        for ti, ri in assign(sim, iou):
            if t.eligible[ti]:
                found += 1
                ids_of.setdefault(int(t.face_ids[ti]), []).append(int(r.track_ids[ri]))
    matches = consistent = switches = 0
    worst = 1.0
    for ids in ids_of.values():
        top = Counter(ids).most_common(1)[0][1]
        matches += len(ids)
        consistent += top
        switches += sum(1 for a, b in pairwise(ids) if a != b)
        if len(ids) >= 2:
            worst = min(worst, top / len(ids))
    faces_of: dict[int, list[int]] = {}
    for face, ids in ids_of.items():
        for track in ids:
            faces_of.setdefault(track, []).append(face)
    pure = sum(Counter(f).most_common(1)[0][1] for f in faces_of.values())
    faces = len({int(i) for t in truth for i in t.face_ids[t.eligible]})
    return TrackingScore(
        len(truth), eligible, found, matches, consistent, switches, worst, faces, pure
    )
