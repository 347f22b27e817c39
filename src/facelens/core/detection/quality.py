"""Face image quality from the pixels: sharpness (blur) and brightness, pure NumPy.

* `blur`: the variance of the Laplacian of the face crop's luma (0..1 scale), after
  reducing the crop to at most `WORK_SIDE` pixels by block averaging (so big and small
  faces are comparable), mapped to 0..1 by v / (v + `BLUR_HALF`). 1 = sharp, 0 = flat;
  `BLUR_HALF` is the variance that scores 0.5. Higher is sharper (the name says what
  it measures against; a blurred copy of a face scores lower).
* `brightness`: the crop's mean luma (Rec. 601), 0 = black, 1 = white.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

WORK_SIDE = 96
BLUR_HALF = 0.002
"""Laplacian variance (luma in 0..1) that maps to blur 0.5."""


@dataclass(frozen=True, slots=True)
class FaceQuality:
    blur: float
    brightness: float

    def to_json(self) -> dict[str, float]:
        return {"blur": round(self.blur, 4), "brightness": round(self.brightness, 4)}


def luma(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Rec. 601 luma of RGB pixels, 0..1."""
    rgb = pixels.astype(np.float64) / 255.0
    out: npt.NDArray[np.float64] = rgb @ np.array([0.299, 0.587, 0.114])
    return out


def _reduce(gray: npt.NDArray[np.float64], side: int) -> npt.NDArray[np.float64]:
    step = max(1, -(-max(gray.shape) // side))
    if step == 1:
        return gray
    h, w = (gray.shape[0] // step) * step, (gray.shape[1] // step) * step
    blocks = gray[:h, :w].reshape(h // step, step, w // step, step)
    out: npt.NDArray[np.float64] = blocks.mean(axis=(1, 3))
    return out


def laplacian_variance(gray: npt.NDArray[np.float64]) -> float:
    """Variance of the 4-neighbour Laplacian over the interior (0 below 3x3)."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = (
        gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    )
    return float(lap.var())


def face_quality(
    pixels: npt.NDArray[np.uint8],
    box: tuple[float, float, float, float],
    scale: float = 1.0,
) -> FaceQuality:
    """Quality of the face in `box` (x1, y1, x2, y2 in original pixels; `pixels` are
    the original reduced by `scale`, as in `DecodedImage`)."""
    height, width = pixels.shape[:2]
    x1 = int(np.clip(np.floor(box[0] * scale), 0, width))
    y1 = int(np.clip(np.floor(box[1] * scale), 0, height))
    x2 = int(np.clip(np.ceil(box[2] * scale), 0, width))
    y2 = int(np.clip(np.ceil(box[3] * scale), 0, height))
    if x2 <= x1 or y2 <= y1:
        return FaceQuality(0.0, 0.0)
    gray = luma(pixels[y1:y2, x1:x2])
    variance = laplacian_variance(_reduce(gray, WORK_SIDE))
    return FaceQuality(variance / (variance + BLUR_HALF), float(gray.mean()))
