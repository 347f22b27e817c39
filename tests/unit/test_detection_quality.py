"""Face quality: Laplacian sharpness and brightness on synthetic crops."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.core.detection.quality import face_quality


def textured(size: int = 120, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (size, size, 1), dtype=np.uint8)
    return np.repeat(noise, 3, axis=2)


def box_blur(pixels: np.ndarray, k: int = 7) -> np.ndarray:
    out = pixels.astype(np.float64)
    kernel = np.ones(k) / k
    for axis in (0, 1):
        out = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, out)
    return out.astype(np.uint8)


def test_blur_lowers_the_score() -> None:
    sharp = face_quality(textured(), (0, 0, 120, 120))
    blurred = face_quality(box_blur(textured()), (0, 0, 120, 120))
    assert 0.0 <= blurred.blur < sharp.blur <= 1.0


def test_a_flat_crop_has_no_sharpness_and_its_brightness() -> None:
    flat = np.full((50, 50, 3), 255, dtype=np.uint8)
    assert face_quality(flat, (5, 5, 45, 45)).blur == 0.0
    assert face_quality(flat, (5, 5, 45, 45)).brightness == pytest.approx(1.0)
    dark = np.zeros((50, 50, 3), dtype=np.uint8)
    assert face_quality(dark, (5, 5, 45, 45)).brightness == 0.0


def test_boxes_outside_or_scaled() -> None:
    pixels = textured(60)
    assert face_quality(pixels, (100, 100, 200, 200)).blur == 0.0
    half = face_quality(pixels, (0, 0, 120, 120), scale=0.5)
    assert half == face_quality(pixels, (0, 0, 60, 60))
