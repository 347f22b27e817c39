"""How big the model input is, and building it.

The scale rule (one place, used by the decoder and the detector alike):

* No `min_face_size`: run at the original size, but never with a long side above
  `MAX_SIDE` (2048 px; a reduction just below 1/2, 1/4 or 1/8 is rounded to it, so a
  JPEG can be decoded directly at that size). A 1024 px photo runs at 1:1 (what the
  WIDER FACE numbers measure); a 12 MP phone photo runs at 2000 px, where the smallest
  reliably found face is about `reliable_face_px * long_side / 2000` original pixels.
* With `min_face_size` = m: scale so that an m-pixel face becomes `reliable_face_px`
  pixels at the model input (up-scaling small m, down-scaling large m for speed), with
  the long side kept within [`MIN_SIDE`, `MAX_SIDE_ASKED`] and the input within
  `MAX_INPUT_PIXELS`, so a tiny m on a big photo cannot exhaust memory.

The input tensor is letterboxed, not stretched: the resized image sits at the top
left of a tensor whose sides are rounded up to a multiple of 32 (the models' total
stride), the rest is padding. Coordinates then map back with a single factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_SIDE = 2048
"""Long side cap when the caller did not ask for a minimum face size."""
MAX_SIDE_ASKED = 4096
"""Long side cap when a small `min_face_size` asks for up-scaling."""
MIN_SIDE = 320
"""Down-scaling for a large `min_face_size` never goes below this long side."""
MAX_INPUT_PIXELS = 4096 * 3072
"""Model input area cap (CenterFace activations at this size take ~2 GB)."""
DECODE_FACE_PX = 24
"""The `reliable_face_px` the decoder assumes: above every model's own value, so a
decoder never reduces an image more than the detector would."""


def detection_scale(
    width: int,
    height: int,
    min_face_size: int | None,
    reliable_face_px: float,
) -> float:
    """The factor from original (oriented) pixels to model-input pixels (see module doc)."""
    long_side = max(width, height, 1)
    if min_face_size is None or min_face_size <= 0:
        return _snap_to_power_of_two(min(1.0, MAX_SIDE / long_side))
    scale = reliable_face_px / float(min_face_size)
    scale = max(scale, min(1.0, MIN_SIDE / long_side))
    scale = min(scale, MAX_SIDE_ASKED / long_side)
    return min(scale, math.sqrt(MAX_INPUT_PIXELS / max(width * height, 1)))


def pass_scale(width: int, height: int, base: float, factor: float) -> float:
    """The scale of a pass `factor` times the planned `base` (see `families.ScalePass`).

    An up-scaling pass (factor > 1, for small faces) stops at a `MAX_SIDE` long side,
    and never goes below `base`: on a 4000x3000 photo planned at 2000 px, a 1.125x pass
    runs at 2048 px, not 2250, so large photos keep their bounded cost.
    """
    scale = base * factor
    if factor > 1.0:
        scale = max(base, min(scale, MAX_SIDE / max(width, height, 1)))
    return scale


def coarse_scale(width: int, height: int, base: float, long_side: int) -> float | None:
    """The scale of a coarse pass (`families.ScalePass.long_side`): the image's long
    side at `long_side` pixels; None when that would not reduce the planned `base` by
    at least a third (the planned pass then already sees the whole frame that small)."""
    scale = long_side / max(width, height, 1)
    return scale if scale <= base * 2.0 / 3.0 else None


def _snap_to_power_of_two(scale: float) -> float:
    """Round a reduction down to 1/2, 1/4, 1/8 when that is at most 20 % smaller.

    Those are the factors a JPEG decodes at directly (DCT scaling), which saves both
    the full decode and a resize: a 4000 px photo runs at 2000 px instead of 2048.
    """
    if scale >= 1.0:
        return scale
    power = 2.0 ** math.floor(math.log2(scale))
    return power if power >= 0.125 and scale <= power * 1.25 else scale


def decode_scale(width: int, height: int, min_face_size: int | None) -> float:
    """How far a decoder may reduce an image while decoding (<= 1; 1 = full size).

    The detector's own scale is never larger than this, so it never has to up-scale
    what the decoder reduced.
    """
    return min(1.0, detection_scale(width, height, min_face_size, DECODE_FACE_PX))


@dataclass(frozen=True, slots=True)
class InputPlan:
    """Resize `source` pixels to `width` x `height`, pad to `tensor_width` x `tensor_height`.

    `factor` is model-input pixels per source pixel (the resize ratio, the same on
    both axes up to rounding of the size).
    """

    factor: float
    width: int
    height: int
    tensor_width: int
    tensor_height: int

    @property
    def resizes(self) -> bool:
        return self.factor != 1.0


def plan_input(
    source_width: int, source_height: int, factor: float, multiple: int = 32, pad_to: int = 0
) -> InputPlan:
    """The input geometry for resizing `source` pixels by `factor`.

    A factor within 0.5 % of 1 is treated as 1: resampling costs more than it changes.
    `pad_to` > 0 pads both tensor sides to at least that: a coarse pass then always
    has the same input shape, which a backend compiles once (OpenVINO spends ~20 ms on
    each new shape, more than the coarse inference itself).
    """
    if abs(factor - 1.0) < 0.005:
        factor = 1.0
    width = max(1, round(source_width * factor))
    height = max(1, round(source_height * factor))
    return InputPlan(
        factor=factor,
        width=width,
        height=height,
        tensor_width=max(-(-width // multiple) * multiple, pad_to),
        tensor_height=max(-(-height // multiple) * multiple, pad_to),
    )


def build_tensor(
    pixels: npt.NDArray[np.uint8],
    plan: InputPlan,
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
    std: tuple[float, float, float] = (1.0, 1.0, 1.0),
    bgr: bool = False,
) -> npt.NDArray[np.float32]:
    """A (1, 3, H, W) float32 tensor from already resized (height, width, 3) RGB pixels.

    Channels are reordered and normalised while copying into a zero-filled tensor, one
    plane at a time: a strided copy per plane is ~4x cheaper than transposing the whole
    image and then normalising it (the notes' "naive" 8.7 ms).
    """
    if pixels.shape[:2] != (plan.height, plan.width):
        raise ValueError(f"pixels {pixels.shape[:2]} do not match plan {plan.height}x{plan.width}")
    tensor = np.zeros((1, 3, plan.tensor_height, plan.tensor_width), dtype=np.float32)
    order = (2, 1, 0) if bgr else (0, 1, 2)
    for plane, channel in enumerate(order):
        target = tensor[0, plane, : plan.height, : plan.width]
        target[...] = pixels[:, :, channel]
        if mean[plane] != 0.0:
            target -= np.float32(mean[plane])
        if std[plane] != 1.0:
            target /= np.float32(std[plane])
    return tensor


def pad_pixels(
    pixels: npt.NDArray[np.uint8], plan: InputPlan, fill: tuple[int, int, int] = (0, 0, 0)
) -> npt.NDArray[np.uint8]:
    """A (1, H, W, 3) uint8 batch of already resized RGB pixels, letterboxed like
    `build_tensor` (image top left, `fill` elsewhere: the colour that normalises to
    zero, so both inputs mean the same). No copy when no padding is needed."""
    if pixels.shape[:2] != (plan.height, plan.width):
        raise ValueError(f"pixels {pixels.shape[:2]} do not match plan {plan.height}x{plan.width}")
    if (plan.tensor_height, plan.tensor_width) == (plan.height, plan.width):
        return np.ascontiguousarray(pixels)[None]
    batch = np.empty((1, plan.tensor_height, plan.tensor_width, 3), dtype=np.uint8)
    batch[0, : plan.height, : plan.width] = pixels
    batch[0, plan.height :, :] = fill
    batch[0, : plan.height, plan.width :] = fill
    return batch
