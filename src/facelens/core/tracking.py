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
on centre and size (time in seconds, so any interval works), all predictions then
moved by the camera's apparent shift and zoom when that lines more of them up with
the faces (`tracking_motion.camera_motion`); faces scoring at least
`high_score` are assigned first by IoU with the predictions, then the rest (low score)
to the tracks still free at a stricter IoU, then still-unmatched faces (high first) by
centre distance relative to the face size (long intervals, fast pans: IoU can be zero
while the face is plainly the same one). Every face gets an id: an unmatched face
starts a track. A track not seen for `survival_ms(interval_ms)` is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from facelens.core.domain import Face, JsonObject
from facelens.core.tracking_motion import (
    Box,
    FloatArray,
    KalmanBox,
    assign,
    camera_motion,
    iou_matrix,
    proximity_matrix,
)

__all__ = [
    "Box",
    "FloatArray",
    "TrackObservation",
    "TrackSummary",
    "Tracker",
    "assign",
    "face_box",
    "iou_matrix",
    "stitch",
    "summarise_tracks",
    "survival_ms",
]

MIN_SURVIVAL_MS = 1000
SURVIVAL_FRAMES = 3
HIGH_SCORE = 0.6
HIGH_IOU = 0.2
LOW_IOU = 0.4


def survival_ms(interval_ms: int) -> int:
    """How long a track outlives its last face: a few sampled frames, at least 1 s.

    Scaled by time, not frames: at 40 ms a face hidden for 25 frames (a head turn)
    keeps its id; at 1000 ms three missed samples are allowed.
    """
    return max(MIN_SURVIVAL_MS, SURVIVAL_FRAMES * max(0, interval_ms))


def face_box(face: Face) -> Box:
    return (face.x, face.y, face.x + face.width, face.y + face.height)


@dataclass(slots=True)
class _Track:
    track_id: int
    filter: KalmanBox
    last_ms: int
    """When the track last had a face."""
    state_ms: int
    """The time the filter's state refers to (predicted up to the latest frame)."""


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
            track.filter.predict((timestamp_ms - track.state_ms) / 1000.0)
            track.state_ms = timestamp_ms
        boxes = np.array([face_box(f) for f in faces], float).reshape(-1, 4)
        predicted = np.array([t.filter.box() for t in self._tracks], float).reshape(-1, 4)
        predicted = camera_motion(predicted, boxes)
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
        low = match(low, 1e-6, proximity=True)
        for i in sorted(high + low):
            ids[i] = self._next_id
            self._tracks.append(
                _Track(self._next_id, KalmanBox(face_box(faces[i])), timestamp_ms, timestamp_ms)
            )
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
