"""Faces linked across sampled video frames into tracks (ByteTrack/SORT style), pure.

Why written here: the packaged ByteTracks on PyPI (`bytetracker`, `cjm-byte-track`,
the one inside `supervision`) count survival in frames at a fixed frame rate, pull
extra dependencies (lap/cython_bbox, OpenCV) and are untyped; a video task samples
frames at `frame_interval_ms` (up to seconds apart) and segments run independently,
so the survival window here is in milliseconds and the whole tracker is ~300 lines of
NumPy plus `scipy.optimize.linear_sum_assignment`.

API (what the video flow and the CLI use):

* `Tracker(interval_ms)`; `tracker.update(timestamp_ms, faces) -> list[int]`: one
  track id per face, same order. Ids are small integers from `first_id` (default 1).
  Call once per analysed frame, timestamps increasing, also for frames with no face
  (so missed frames age the tracks).
* `TrackObservation(track_id, timestamp_ms, frame, face, sharpness=None)`: one face
  of one frame with its id; `sharpness` (0..1, e.g. `core.detection.quality`'s `blur`
  computed by the caller on the frame pixels) defaults to the face's
  `extras["quality"]["blur"]` when present.
* `summarise_tracks(observations) -> list[TrackSummary]`; `TrackSummary.to_json()` is
  the callback's `tracks` entry `{"track_id","first_ms","last_ms","frames","best"}`,
  `best` being the face's wire form plus `timestamp_ms` and `frame`.
* `stitch(segments, interval_ms) -> list[dict[int, int]]`: segments of one video
  tracked independently (each with ids from 1), in time order; returns per segment a
  map local id -> task id (ids from 1 in order of first appearance), joining a track
  that ends before a border to one that starts after it when their boxes overlap
  (last box moved by the track's own velocity) within the survival window.

Matching per frame: tracks predict their box with a constant-velocity Kalman filter
on centre and size (time in seconds, so any interval works); faces scoring at least
`high_score` are assigned first by IoU with the predictions, then the rest (low score)
to the tracks still free at a stricter IoU, then still-unmatched high-score faces by
centre distance relative to the face size (long intervals, fast pans: IoU can be zero
while the face is plainly the same one). Every face gets an id: an unmatched face
starts a track. A track not seen for `survival_ms(interval_ms)` is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from facelens.core.domain import Face, JsonObject

FloatArray = npt.NDArray[np.float64]
Box = tuple[float, float, float, float]
"""x1, y1, x2, y2."""

MIN_SURVIVAL_MS = 1000
SURVIVAL_FRAMES = 3
HIGH_SCORE = 0.6
HIGH_IOU = 0.2
LOW_IOU = 0.4
MAX_CENTRE_DISTANCE = 1.5
"""Centre distance, in units of the track's mean side, for the fallback match."""


def survival_ms(interval_ms: int) -> int:
    """How long a track outlives its last face: a few sampled frames, at least 1 s.

    Scaled by time, not frames: at 40 ms a face hidden for 25 frames (a head turn)
    keeps its id; at 1000 ms three missed samples are allowed.
    """
    return max(MIN_SURVIVAL_MS, SURVIVAL_FRAMES * max(0, interval_ms))


def face_box(face: Face) -> Box:
    return (face.x, face.y, face.x + face.width, face.y + face.height)


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


class _KalmanBox:
    """Constant-velocity Kalman filter on (cx, cy, w, h) with time in seconds.

    Noise scales with the box height so small and large faces behave alike (as
    SORT/ByteTrack's xyah filter); the process noise grows with the elapsed time.
    """

    POS_NOISE = 0.05
    VEL_NOISE = 0.5
    """Per-second std of velocity change, in box heights per second."""

    def __init__(self, box: Box) -> None:
        x1, y1, x2, y2 = box
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        self.mean: FloatArray = np.array([(x1 + x2) / 2, (y1 + y2) / 2, w, h, 0, 0, 0, 0], float)
        p = self.POS_NOISE * h
        v = 1.0 * h
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


@dataclass(slots=True)
class _Track:
    track_id: int
    filter: _KalmanBox
    last_ms: int


class Tracker:
    """Assigns a track id to every face of successive analysed frames of one video."""

    def __init__(
        self,
        interval_ms: int,
        *,
        first_id: int = 1,
        high_score: float = HIGH_SCORE,
    ) -> None:
        self.interval_ms = interval_ms
        self.survival_ms = survival_ms(interval_ms)
        self.high_score = high_score
        self._next_id = first_id
        self._tracks: list[_Track] = []
        self._last_ms: int | None = None

    @property
    def next_id(self) -> int:
        return self._next_id

    def update(self, timestamp_ms: int, faces: Sequence[Face]) -> list[int]:
        """Track ids for `faces` (same order) seen at `timestamp_ms`."""
        if self._last_ms is not None and timestamp_ms < self._last_ms:
            raise ValueError(f"timestamps must not decrease ({timestamp_ms} < {self._last_ms})")
        self._last_ms = timestamp_ms
        self._tracks = [t for t in self._tracks if timestamp_ms - t.last_ms <= self.survival_ms]
        for track in self._tracks:
            track.filter.predict((timestamp_ms - track.last_ms) / 1000.0)
        boxes = np.array([face_box(f) for f in faces], float).reshape(-1, 4)
        predicted = np.array([t.filter.box() for t in self._tracks], float).reshape(-1, 4)
        ids = [0] * len(faces)
        free_tracks = set(range(len(self._tracks)))
        high = [i for i, f in enumerate(faces) if f.score >= self.high_score]
        low = [i for i, f in enumerate(faces) if f.score < self.high_score]

        def match(face_idx: list[int], minimum: float, proximity: bool = False) -> list[int]:
            tracks = sorted(free_tracks)
            if not face_idx or not tracks:
                return face_idx
            t_boxes, f_boxes = predicted[tracks], boxes[face_idx]
            sim = proximity_matrix(t_boxes, f_boxes) if proximity else iou_matrix(t_boxes, f_boxes)
            taken: set[int] = set()
            for r, c in assign(sim, minimum):
                track, face = tracks[r], face_idx[c]
                ids[face] = self._tracks[track].track_id
                self._tracks[track].filter.update(face_box(faces[face]))
                self._tracks[track].last_ms = timestamp_ms
                free_tracks.discard(track)
                taken.add(face)
            return [i for i in face_idx if i not in taken]

        high = match(high, HIGH_IOU)
        low = match(low, LOW_IOU)
        high = match(high, 1e-6, proximity=True)
        for i in sorted(high + low):
            ids[i] = self._next_id
            self._tracks.append(_Track(self._next_id, _KalmanBox(face_box(faces[i])), timestamp_ms))
            self._next_id += 1
        return ids


@dataclass(frozen=True, slots=True)
class TrackObservation:
    track_id: int
    timestamp_ms: int
    frame: int
    face: Face
    sharpness: float | None = None

    def quality(self) -> float:
        """Thumbnail rank: score, sharpness and (softly) size; higher is better.

        Size counts up to an 80 px side so a sharp frontal face beats a tiny one at
        the same score, but a large blurry one does not win by size alone.
        """
        sharp = self.sharpness
        if sharp is None:
            q = self.face.extras.get("quality")
            sharp = float(q["blur"]) if isinstance(q, dict) and "blur" in q else 0.5
        side = min(self.face.width, self.face.height)
        size = float(np.sqrt(min(1.0, side / 80.0)))
        return float(self.face.score) * (0.5 + 0.5 * sharp) * size


@dataclass(frozen=True, slots=True)
class TrackSummary:
    track_id: int
    first_ms: int
    last_ms: int
    frames: int
    best: TrackObservation

    def to_json(self) -> JsonObject:
        best = self.best.face.to_json()
        best["timestamp_ms"] = self.best.timestamp_ms
        best["frame"] = self.best.frame
        return {
            "track_id": self.track_id,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "frames": self.frames,
            "best": best,
        }


def summarise_tracks(observations: Iterable[TrackObservation]) -> list[TrackSummary]:
    """One summary per track id, ordered by id; `frames` counts analysed frames seen."""
    grouped: dict[int, list[TrackObservation]] = {}
    for obs in observations:
        grouped.setdefault(obs.track_id, []).append(obs)
    out: list[TrackSummary] = []
    for track_id in sorted(grouped):
        seen = grouped[track_id]
        best = max(seen, key=lambda o: (o.quality(), o.face.area, -o.timestamp_ms))
        out.append(
            TrackSummary(
                track_id=track_id,
                first_ms=min(o.timestamp_ms for o in seen),
                last_ms=max(o.timestamp_ms for o in seen),
                frames=len({o.frame for o in seen}),
                best=best,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class _Span:
    """A segment-local track's ends, for joining across a border."""

    local_id: int
    first_ms: int
    first_box: Box
    last_ms: int
    last_box: Box
    velocity: tuple[float, float]
    """Centre motion in px/ms over the track's last two observations."""

    def last_box_at(self, timestamp_ms: int) -> Box:
        dt = timestamp_ms - self.last_ms
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        x1, y1, x2, y2 = self.last_box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)


def _spans(observations: Sequence[TrackObservation]) -> list[_Span]:
    grouped: dict[int, list[TrackObservation]] = {}
    for obs in observations:
        grouped.setdefault(obs.track_id, []).append(obs)
    spans: list[_Span] = []
    for local_id, seen in grouped.items():
        seen.sort(key=lambda o: o.timestamp_ms)
        first, last = seen[0], seen[-1]
        velocity = (0.0, 0.0)
        if len(seen) >= 2 and last.timestamp_ms > seen[-2].timestamp_ms:
            a, b = face_box(seen[-2].face), face_box(last.face)
            dt = last.timestamp_ms - seen[-2].timestamp_ms
            velocity = ((b[0] + b[2] - a[0] - a[2]) / 2 / dt, (b[1] + b[3] - a[1] - a[3]) / 2 / dt)
        spans.append(
            _Span(
                local_id,
                first.timestamp_ms,
                face_box(first.face),
                last.timestamp_ms,
                face_box(last.face),
                velocity,
            )
        )
    return spans


def stitch(
    segments: Sequence[Sequence[TrackObservation]], interval_ms: int
) -> list[dict[int, int]]:
    """Per segment, local track id -> task track id (see the module docstring).

    A track after a border joins one before it when it starts within
    `survival_ms(interval_ms)` of that one's end and their boxes overlap (IoU >= 0.2
    after moving the earlier box by its velocity, or the centre-distance fallback).
    A chain across several borders keeps one id.
    """
    window = survival_ms(interval_ms)
    maps: list[dict[int, int]] = []
    next_id = 1
    previous: list[_Span] = []
    for index, observations in enumerate(segments):
        spans = _spans(observations)
        mapping: dict[int, int] = {}
        if index > 0 and previous and spans:
            sim = np.zeros((len(previous), len(spans)))
            for i, p in enumerate(previous):
                for j, s in enumerate(spans):
                    if not 0 < s.first_ms - p.last_ms <= window:
                        continue
                    moved = np.array([p.last_box_at(s.first_ms)], float)
                    start = np.array([s.first_box], float)
                    overlap = float(iou_matrix(moved, start)[0, 0])
                    near = float(proximity_matrix(moved, start)[0, 0])
                    sim[i, j] = overlap if overlap >= HIGH_IOU else HIGH_IOU * near
            for r, c in assign(sim, 1e-6):
                mapping[spans[c].local_id] = maps[-1][previous[r].local_id]
        for span in sorted(spans, key=lambda s: (s.first_ms, s.local_id)):
            if span.local_id not in mapping:
                mapping[span.local_id] = next_id
                next_id += 1
        maps.append(mapping)
        previous = spans
    return maps
