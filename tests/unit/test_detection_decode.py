"""CenterFace and RetinaFace output decoding on hand-made output arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelens.core.detection.centerface import decode_centerface
from facelens.core.detection.retinaface import anchors, decode_retinaface


def centerface_outputs(h: int, w: int) -> list[np.ndarray]:
    return [
        np.zeros((1, 1, h, w), np.float32),
        np.zeros((1, 2, h, w), np.float32),
        np.zeros((1, 2, h, w), np.float32),
        np.zeros((1, 10, h, w), np.float32),
    ]


def test_centerface_decodes_one_peak_into_box_score_and_landmarks() -> None:
    heat, scale, offset, marks = centerface_outputs(8, 8)  # a 32x32 input, stride 4
    heat[0, 0, 3, 2] = 0.9
    scale[0, 0, 3, 2] = math.log(20 / 4)  # height 20 px
    scale[0, 1, 3, 2] = math.log(16 / 4)  # width 16 px
    offset[0, :, 3, 2] = (0.25, 0.5)  # dy, dx in cells
    marks[0, 0::2, 3, 2] = 0.5  # every landmark half-way down the box
    marks[0, 1::2, 3, 2] = [0.25, 0.75, 0.5, 0.25, 0.75]  # x fractions
    dets = decode_centerface([heat, scale, offset, marks], tensor_height=32, threshold=0.5)
    assert len(dets) == 1
    centre_x, centre_y = (2 + 0.5 + 0.5) * 4, (3 + 0.25 + 0.5) * 4
    assert dets.boxes[0] == pytest.approx(
        [centre_x - 8, centre_y - 10, centre_x + 8, centre_y + 10]
    )
    assert dets.scores[0] == pytest.approx(0.9)
    x1, y1 = centre_x - 8, centre_y - 10
    assert dets.landmarks[0, :, 0] == pytest.approx([x1 + 4, x1 + 12, x1 + 8, x1 + 4, x1 + 12])
    assert dets.landmarks[0, :, 1] == pytest.approx([y1 + 10] * 5)


def test_centerface_threshold_is_strict_and_empty_heatmap_gives_nothing() -> None:
    outputs = centerface_outputs(4, 4)
    outputs[0][0, 0, 1, 1] = 0.5
    assert len(decode_centerface(outputs, 16, 0.5)) == 0
    assert len(decode_centerface(outputs, 16, 0.49)) == 1
    assert len(decode_centerface(centerface_outputs(4, 4), 16, 0.0)) == 0


def test_centerface_stride_follows_the_tensor_height() -> None:
    outputs = centerface_outputs(4, 4)
    outputs[0][0, 0, 0, 0] = 1.0
    wide = decode_centerface(outputs, tensor_height=32, threshold=0.5)  # stride 8
    assert wide.boxes[0] == pytest.approx([4 - 4, 4 - 4, 4 + 4, 4 + 4])


def test_retinaface_anchor_grid_order_and_count() -> None:
    grid = anchors(64, 32)
    assert grid.shape == ((8 * 4 + 4 * 2 + 2 * 1) * 2, 4)
    # first stride-8 cell: two sizes at the same centre, then the next cell to the right
    assert grid[0].tolist() == [4, 4, 16, 16]
    assert grid[1].tolist() == [4, 4, 32, 32]
    assert grid[2].tolist() == [12, 4, 16, 16]
    assert not grid.flags.writeable


def test_retinaface_decodes_offsets_with_variances() -> None:
    grid = anchors(64, 64)
    n = grid.shape[0]
    loc = np.zeros((1, n, 4), np.float32)
    conf = np.zeros((1, n, 2), np.float32)
    conf[0, :, 0] = 1.0
    marks = np.zeros((1, n, 10), np.float32)
    conf[0, 1] = (0.1, 0.9)  # anchor 1: centre (4, 4), size 32
    loc[0, 1] = (1.0, -1.0, 0.0, math.log(2) / 0.2)  # dx=+3.2 px, dy=-3.2 px, h doubled
    marks[0, 1] = [1.0, 0.0] * 5
    dets = decode_retinaface([loc, conf, marks], 64, 64, threshold=0.5)
    assert len(dets) == 1
    assert dets.scores[0] == pytest.approx(0.9)
    cx, cy = 4 + 3.2, 4 - 3.2
    assert dets.boxes[0] == pytest.approx([cx - 16, cy - 32, cx + 16, cy + 32])
    assert dets.landmarks[0, 0] == pytest.approx([4 + 3.2, 4])


def test_retinaface_rejects_outputs_of_another_size() -> None:
    wrong = [np.zeros((1, 5, 4), np.float32), np.zeros((1, 5, 2), np.float32)]
    with pytest.raises(ValueError, match="anchors"):
        decode_retinaface([*wrong, np.zeros((1, 5, 10), np.float32)], 64, 64, 0.5)
