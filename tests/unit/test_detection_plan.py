"""The scale rule and the letterboxed input tensor."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.core.detection.plan import (
    MAX_INPUT_PIXELS,
    MAX_SIDE_ASKED,
    build_tensor,
    coarse_scale,
    decode_scale,
    detection_scale,
    pad_pixels,
    pass_scale,
    plan_input,
)


def test_ordinary_photos_run_at_their_original_size() -> None:
    assert detection_scale(1024, 768, None, 16) == 1.0
    assert detection_scale(300, 200, None, 16) == 1.0


def test_big_photos_are_capped_and_snapped_to_a_jpeg_draft_factor() -> None:
    assert detection_scale(4000, 3000, None, 16) == 0.5  # 2048/4000 = 0.512 -> 1/2
    assert detection_scale(3000, 2000, None, 16) == pytest.approx(2048 / 3000)  # no snap


def test_min_face_size_upscales_small_faces_and_downscales_large_ones() -> None:
    assert detection_scale(1024, 768, 8, 16) == 2.0
    assert detection_scale(1024, 768, 32, 16) == 0.5
    assert detection_scale(1024, 768, 16, 16) == 1.0


def test_min_face_size_scaling_has_limits() -> None:
    assert detection_scale(1024, 768, 1000, 16) == pytest.approx(320 / 1024)  # MIN_SIDE
    tiny = detection_scale(4000, 3000, 1, 16)
    assert 4000 * tiny <= MAX_SIDE_ASKED
    assert 4000 * 3000 * tiny**2 <= MAX_INPUT_PIXELS * 1.0001


def test_decoder_never_reduces_more_than_the_detector() -> None:
    for size in ((4000, 3000), (8000, 6000), (1024, 768), (6000, 500)):
        for face in (None, 8, 20, 40, 200):
            wanted = min(1.0, detection_scale(*size, face, 16))
            assert decode_scale(*size, face) >= wanted - 1e-9
            assert decode_scale(*size, face) <= 1.0


def test_plan_pads_to_a_multiple_and_skips_tiny_resizes() -> None:
    plan = plan_input(1024, 683, 1.0)
    assert (plan.width, plan.height, plan.tensor_width, plan.tensor_height) == (
        1024,
        683,
        1024,
        704,
    )
    assert not plan.resizes
    assert not plan_input(1000, 700, 1.004).resizes
    half = plan_input(1001, 700, 0.5)
    assert (half.width, half.height, half.tensor_width, half.tensor_height) == (500, 350, 512, 352)


def test_tensor_is_planar_letterboxed_and_normalised() -> None:
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 10, 20, 30
    plan = plan_input(3, 2, 1.0, multiple=4)
    rgb = build_tensor(pixels, plan)
    assert rgb.shape == (1, 3, 4, 4) and rgb.dtype == np.float32
    assert rgb[0, :, 0, 0].tolist() == [10, 20, 30]
    assert rgb[0, :, 3, :].sum() == 0 and rgb[0, :, :, 3].sum() == 0  # padding
    bgr = build_tensor(pixels, plan, mean=(1, 2, 3), std=(1, 2, 3), bgr=True)
    assert bgr[0, :, 1, 2].tolist() == pytest.approx([29, 9, 7 / 3])


def test_tensor_refuses_pixels_of_another_size() -> None:
    with pytest.raises(ValueError):
        build_tensor(np.zeros((5, 5, 3), np.uint8), plan_input(4, 4, 1.0))


def test_padded_pixels_match_the_tensor_layout_and_share_memory_when_unpadded() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    plan = plan_input(70, 50, 1.0)
    batch = pad_pixels(pixels, plan, fill=(123, 117, 104))
    assert batch.shape == (1, 64, 96, 3) and batch.dtype == np.uint8
    assert (batch[0, :50, :70] == pixels).all()
    assert (batch[0, 50:] == [123, 117, 104]).all() and (batch[0, :, 70:] == [123, 117, 104]).all()
    # what the model sees (BGR, mean subtracted) equals build_tensor's, padding included
    mean = (104.0, 117.0, 123.0)
    seen = batch[0, :, :, ::-1].astype(np.float32) - np.float32(mean)
    assert np.array_equal(seen.transpose(2, 0, 1)[None], build_tensor(pixels, plan, mean, bgr=True))
    exact = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    assert np.shares_memory(pad_pixels(exact, plan_input(96, 64, 1.0)), exact)
    with pytest.raises(ValueError, match="do not match"):
        pad_pixels(exact, plan)


def test_up_scaling_passes_stop_at_the_side_cap_and_reductions_are_kept() -> None:
    assert pass_scale(1024, 768, 1.0, 1.125) == 1.125
    assert pass_scale(4000, 3000, 0.5, 1.125) == pytest.approx(2048 / 4000)
    assert pass_scale(4000, 3000, 0.5, 0.5) == 0.25
    assert pass_scale(3000, 3000, 1.0, 1.5) == 1.0  # asked for more than the cap: base


def test_a_coarse_pass_runs_only_when_it_reduces_and_has_one_input_shape() -> None:
    assert coarse_scale(1024, 768, 1.0, 192) == pytest.approx(192 / 1024)
    assert coarse_scale(256, 200, 1.0, 192) is None  # barely a reduction: skipped
    assert coarse_scale(4000, 3000, 0.5, 192) == pytest.approx(192 / 4000)
    for width, height in ((1024, 768), (600, 1000), (333, 333)):
        scale = coarse_scale(width, height, 1.0, 192)
        assert scale is not None
        plan = plan_input(width, height, scale, 32, pad_to=192)
        assert (plan.tensor_width, plan.tensor_height) == (192, 192)
        assert max(plan.width, plan.height) == 192
