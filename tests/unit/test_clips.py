"""The test-clip maker (tests/support/clips.py) tells the truth: in every container,
the frames decode back with their timestamps, and each frame's true box sits where
the pixels show the object. A synthetic photo: one bright square on a dark field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.clips import Container, decode_rgb, make_clip, pan_zoom_path, sample

SQUARE = (240.0, 120.0, 60.0, 60.0)
"""x, y, w, h of the bright square in the 480x270 photo."""


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pixels = np.full((270, 480, 3), 30, np.uint8)
    x, y, w, h = (int(v) for v in SQUARE)
    pixels[y : y + h, x : x + w] = 230
    path = tmp_path_factory.mktemp("photo") / "square.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize("container", ["mp4", "webm", "gif", "webp"])
def test_frames_decode_back_with_their_times_and_true_boxes(
    photo: Path, tmp_path: Path, container: Container
) -> None:
    clip = make_clip(
        photo,
        np.array([SQUARE]),
        tmp_path / f"clip.{container}",
        size=(160, 90),
        fps=10,
        seconds=1.0,
        container=container,
    )
    decoded = decode_rgb(clip.path)
    assert [ts for ts, _ in decoded] == [100 * i for i in range(10)]
    assert [f.timestamp_ms for f in clip.frames] == [100 * i for i in range(10)]
    for (_, pixels), truth in zip(decoded, clip.frames, strict=True):
        bright = np.argwhere(pixels.mean(axis=2) > 130)
        (x, y, w, h) = truth.boxes[0]
        assert truth.face_ids.tolist() == [0]
        cy, cx = bright.mean(axis=0)
        assert abs(cx - (x + w / 2)) < 2.0 and abs(cy - (y + h / 2)) < 2.0, (truth.index, cx, cy)


def test_the_window_zooms_in_and_every_edge_moves_one_way() -> None:
    views = pan_zoom_path((1024, 683), 16 / 9, 50)
    lefts = [v.cx - v.width / 2 for v in views]
    rights = [v.cx + v.width / 2 for v in views]
    widths = [v.width for v in views]
    assert lefts == sorted(lefts) and rights == sorted(rights)
    assert widths == sorted(widths, reverse=True) and widths[-1] < 0.65 * widths[0]


def test_sampling_takes_the_first_frame_at_or_after_each_grid_point() -> None:
    times = [0, 40, 80, 120, 160, 200, 240, 280]
    assert sample(times, 100) == [0, 3, 5]
    assert sample(times, 0) == list(range(8))
    assert sample(times, 100, start_ms=50) == [2, 4, 7]
