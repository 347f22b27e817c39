"""Tracker, track summaries and segment stitching on synthetic boxes."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.core.domain import Face
from facelens.core.tracking import (
    Tracker,
    TrackObservation,
    stitch,
    summarise_tracks,
    survival_ms,
)
from facelens.core.tracking_eval import FrameTracks, FrameTruth, score_tracking


def face(cx: float, cy: float, side: float = 60.0, score: float = 0.9) -> Face:
    return Face(cx - side / 2, cy - side / 2, side, side, score)


def run(tracker: Tracker, frames: list[tuple[int, list[Face]]]) -> list[list[int]]:
    return [tracker.update(ts, faces) for ts, faces in frames]


def test_ids_start_at_one_and_follow_a_moving_face() -> None:
    tracker = Tracker(40)
    ids = run(tracker, [(i * 40, [face(100 + 8 * i, 200)]) for i in range(20)])
    assert ids == [[1]] * 20


def test_crossing_faces_keep_their_ids() -> None:
    """Two faces move towards each other, overlap, and carry on: motion decides."""
    tracker = Tracker(40)
    frames = []
    for i in range(30):
        a = face(100 + 12 * i, 200)
        b = face(460 - 12 * i, 210)
        frames.append((i * 40, [a, b] if i % 2 else [b, a]))
    ids = run(tracker, frames)
    for i, got in enumerate(ids):
        expected = [2, 1] if i % 2 else [1, 2]
        assert got == expected, (i, got)


def test_a_missed_frame_keeps_the_id() -> None:
    tracker = Tracker(200)
    frames: list[tuple[int, list[Face]]] = [(i * 200, [face(100 + 20 * i, 100)]) for i in range(8)]
    frames[3] = (600, [])
    frames[4] = (800, [])
    assert [x for x in run(tracker, frames) if x] == [[1]] * 6


def test_a_moving_face_hidden_for_several_frames_is_found_where_it_went() -> None:
    """250 px/s, hidden for 10 frames (0.4 s, within the survival window): the filter
    extrapolates once per frame from where it stood, not again from the last sighting."""
    tracker = Tracker(40)
    frames = [(i * 40, [face(100 + 10 * i, 200, side=40)]) for i in range(30)]
    for i in range(10, 20):
        frames[i] = (i * 40, [])
    assert [x for x in run(tracker, frames) if x] == [[1]] * 20


def test_long_intervals_follow_a_face_that_moves_more_than_its_size() -> None:
    """At 1000 ms a pan moves a face further than its width: IoU is zero, the
    centre-distance fallback still links it (size similar, nothing else near)."""
    tracker = Tracker(1000)
    ids = run(tracker, [(i * 1000, [face(100 + 50 * i, 300, side=40)]) for i in range(6)])
    assert ids == [[1]] * 6


def test_a_camera_pan_moving_neighbours_by_their_spacing_does_not_swap_them() -> None:
    """Two faces 60 px apart, still, then the camera jumps 60 px: face b lands exactly
    where a was. Each box alone says b is a; the shared motion says otherwise."""
    tracker = Tracker(1000)
    still = run(tracker, [(i * 1000, [face(100, 200, 50), face(160, 200, 50)]) for i in range(3)])
    moved = tracker.update(3000, [face(40, 200, 50), face(100, 200, 50)])
    assert still == [[1, 2]] * 3
    assert moved == [1, 2]


def test_a_face_that_leaves_and_a_new_one_later_gets_a_new_id() -> None:
    tracker = Tracker(40)
    first = run(tracker, [(i * 40, [face(100, 100)]) for i in range(5)])
    gone_until = 4 * 40 + survival_ms(40) + 40
    later = run(tracker, [(gone_until, [face(100, 100)])])
    assert first == [[1]] * 5
    assert later == [[2]]


def test_a_low_score_face_continues_a_track_but_not_a_stranger() -> None:
    tracker = Tracker(40)
    run(tracker, [(0, [face(100, 100)]), (40, [face(104, 100)])])
    # low-score face overlapping the track continues it; a distant high-score one is new
    ids = tracker.update(80, [face(400, 400), face(108, 100, score=0.3)])
    assert ids == [2, 1]


def test_timestamps_must_not_go_back() -> None:
    tracker = Tracker(40)
    tracker.update(100, [])
    with pytest.raises(ValueError):
        tracker.update(60, [])


def test_survival_scales_with_interval() -> None:
    assert survival_ms(0) == survival_ms(40) == 1000
    assert survival_ms(1000) == 3000


def test_summaries_pick_the_sharpest_confident_face() -> None:
    obs = [
        TrackObservation(1, 0, 0, face(100, 100, score=0.95), sharpness=0.1),
        TrackObservation(1, 40, 1, face(100, 100, score=0.9), sharpness=0.9),
        TrackObservation(1, 80, 2, face(100, 100, side=20, score=0.97), sharpness=0.9),
        TrackObservation(2, 40, 1, face(300, 100, score=0.8)),
    ]
    summaries = summarise_tracks(obs)
    assert [s.to_json()["track_id"] for s in summaries] == [1, 2]
    first = summaries[0].to_json()
    assert first["first_ms"] == 0 and first["last_ms"] == 80 and first["frames"] == 3
    assert set(first) == {"track_id", "first_ms", "last_ms", "frames", "best"}
    assert first["best"]["timestamp_ms"] == 40 and first["best"]["frame"] == 1
    assert first["best"]["width"] == 60


def test_sharpness_falls_back_to_the_quality_attribute() -> None:
    blurred = Face(0, 0, 80, 80, 0.9, extras={"quality": {"blur": 0.05, "brightness": 0.5}})
    sharp = Face(0, 0, 80, 80, 0.9, extras={"quality": {"blur": 0.95, "brightness": 0.5}})
    best = summarise_tracks([TrackObservation(1, 0, 0, blurred), TrackObservation(1, 40, 1, sharp)])
    assert best[0].best.timestamp_ms == 40


def _segment(tracker_start: int, faces_at: list[tuple[int, list[Face]]]) -> list[TrackObservation]:
    tracker = Tracker(200)
    out: list[TrackObservation] = []
    for ts, faces in faces_at:
        for f, track_id in zip(faces, tracker.update(ts, faces), strict=True):
            out.append(TrackObservation(track_id, ts, ts // 40, f))
    assert tracker_start == 0 or out[0].track_id == 1
    return out


def test_stitch_joins_tracks_across_borders_and_keeps_strangers_apart() -> None:
    """Three segments of 2 s: a face walking right spans all three; a second face
    ends in segment 0; a third appears far away in segment 1."""
    segs: list[list[TrackObservation]] = []
    for k in range(3):
        frames = []
        for ts in range(k * 2000, (k + 1) * 2000, 200):
            faces = [face(100 + ts * 0.1, 300)]
            if k == 0 and ts < 1200:
                faces.append(face(600, 100))
            if k == 1:
                faces.append(face(900, 600))
            frames.append((ts, faces))
        segs.append(_segment(k, frames))
    maps = stitch(segs, 200)
    walker = [maps[k][segs[k][0].track_id] for k in range(3)]
    assert walker == [1, 1, 1]
    assert maps[0] == {1: 1, 2: 2}
    assert maps[1] == {1: 1, 2: 3}
    assert maps[2] == {1: 1}


def test_stitch_does_not_join_beyond_the_survival_window() -> None:
    a = [TrackObservation(1, 0, 0, face(100, 100)), TrackObservation(1, 200, 5, face(100, 100))]
    b = [TrackObservation(1, 200 + survival_ms(200) + 1, 90, face(100, 100))]
    assert stitch([a, b], 200) == [{1: 1}, {1: 2}]


def test_scoring_counts_misses_switches_and_shared_ids() -> None:
    truth_boxes = np.array([[0, 0, 50, 50], [100, 0, 50, 50], [300, 0, 10, 10]], float)
    truth = FrameTruth(truth_boxes, np.array([0, 1, 2]), np.array([True, True, False]))
    frames = [truth] * 4
    both = np.array([[2, 0, 50, 50], [100, 2, 50, 50]], float)
    good = [FrameTracks(both, [1, 2])] * 4
    swapped = [FrameTracks(both, [1, 2])] * 3 + [FrameTracks(both, [2, 1])]
    stuck = [FrameTracks(both[:1], [1]), FrameTracks(both[1:], [1])] * 2
    assert (score_tracking(frames, good).recall, score_tracking(frames, good).purity) == (1.0, 1.0)
    s = score_tracking(frames, swapped)
    assert (s.id_switches, s.id_consistency, s.worst) == (2, 0.75, 0.75)
    s = score_tracking(frames, stuck)
    assert (s.recall, s.id_consistency, s.purity) == (0.5, 1.0, 0.5)
