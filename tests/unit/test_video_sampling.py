"""Frame sampling and segment planning (core/video.py): exact, integer, half-open."""

from __future__ import annotations

import pytest

from facelens.core.video import Sampling, TimeBase, plan_segments, select_frames

MS = TimeBase(1, 1000)


def pts_at(fps_num: int, fps_den: int, count: int, tb: TimeBase) -> list[int]:
    """Frame i at i * fps_den / fps_num seconds, in ticks of `tb` (exact)."""
    return [i * fps_den * tb.den // (fps_num * tb.num) for i in range(count)]


def test_grid_picks_first_frame_at_or_after_each_point() -> None:
    tb = TimeBase(1, 12800)
    pts = pts_at(25, 1, 100, tb)  # 40 ms frames
    chosen = select_frames(pts, tb, Sampling(interval_ms=100, max_frames=100))
    # grid 0, 100, 200, ... -> frames at 0, 120, 200, 320, 400, ...
    assert [tb.ms_floor(pts[i]) for i in chosen][:6] == [0, 120, 200, 320, 400, 520]
    for i in chosen:  # within one frame's duration of its grid point
        assert tb.ms_floor(pts[i]) % 100 < 40


def test_ntsc_rate_is_exact_on_the_grid() -> None:
    tb = TimeBase(1, 30000)
    pts = [i * 1001 for i in range(300)]  # 29.97 fps
    chosen = select_frames(pts, tb, Sampling(interval_ms=1000))
    stamps = [tb.ms_floor(pts[i]) for i in chosen]
    assert stamps[:3] == [0, 1001, 2002]
    assert all(0 <= s - 1000 * k < 34 for k, s in enumerate(stamps))


def test_interval_zero_is_every_frame_from_start_to_end_exclusive() -> None:
    pts = list(range(0, 1000, 10))
    chosen = select_frames(pts, MS, Sampling(interval_ms=0, start_ms=100, end_ms=200))
    assert [pts[i] for i in chosen] == list(range(100, 200, 10))


def test_max_frames_and_frame_shared_by_grid_points() -> None:
    pts = [0, 500, 1000]  # 2 fps, interval 100: several grid points land on one frame
    assert select_frames(pts, MS, Sampling(interval_ms=100)) == [0, 1, 2]
    assert select_frames(pts, MS, Sampling(interval_ms=100, max_frames=2)) == [0, 1]


def test_times_count_from_the_first_frame() -> None:
    pts = [1000 + 40 * i for i in range(50)]  # stream starts at 1 s
    chosen = select_frames(pts, MS, Sampling(interval_ms=400))
    assert [pts[i] - 1000 for i in chosen] == [0, 400, 800, 1200, 1600]


def test_start_beyond_the_end_picks_nothing() -> None:
    assert select_frames([0, 40, 80], MS, Sampling(start_ms=5000)) == []
    assert select_frames([], MS, Sampling()) == []


@pytest.mark.parametrize(
    "kwargs", [{"interval_ms": -1}, {"max_frames": 0}, {"start_ms": 10, "end_ms": 5}]
)
def test_bad_sampling_is_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Sampling(**kwargs)


def test_segments_partition_the_frames() -> None:
    times = list(range(0, 150_000, 1000))
    segments = plan_segments(times, 60_000)
    assert [(s.start_ms, s.end_ms, s.frames) for s in segments] == [
        (0, 60_000, 60),
        (60_000, 120_000, 60),
        (120_000, 149_001, 30),
    ]
    assert sum(s.frames for s in segments) == len(times)


def test_segments_skip_empty_windows_without_gaps() -> None:
    segments = plan_segments([5_000, 250_000], 60_000)
    assert [(s.start_ms, s.end_ms, s.frames) for s in segments] == [
        (0, 240_000, 1),
        (240_000, 250_001, 1),
    ]
    assert plan_segments([], 60_000) == []
