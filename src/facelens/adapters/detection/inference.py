"""What an inference backend implements: `InferenceSession`, one loaded face model.

Both backends (`onnx_backend`, `openvino_backend`) take the same input, the resized
uint8 RGB pixels and the plan that letterboxes them, and each turns it into its
model's input its own way: ONNX Runtime gets a normalised float tensor built in NumPy,
OpenVINO gets the pixels with the normalisation compiled into its graph (no float
copy, no layout reorder). The detector therefore never asks which backend it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from facelens.core.detection.families import ModelFamily
    from facelens.core.detection.plan import InputPlan


@dataclass(frozen=True, slots=True)
class PixelNormalisation:
    """How a model's float input is made from RGB pixels: channels reversed to BGR
    first when `bgr`, then `(value - mean) / std` per model channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool

    @classmethod
    def of(cls, family: ModelFamily) -> PixelNormalisation:
        return cls(family.mean, family.std, family.bgr)

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        """The RGB colour that normalises to zero: letterboxing pixels with it means
        the same to the model as zero-padding the float tensor."""
        mean = tuple(round(v) for v in (self.mean[::-1] if self.bgr else self.mean))
        return (mean[0], mean[1], mean[2])


class InferenceSession(Protocol):
    """One face model loaded on one backend; `infer` is thread-safe."""

    def infer(
        self, pixels: npt.NDArray[np.uint8], plan: InputPlan
    ) -> list[npt.NDArray[np.float32]]:
        """The model's outputs for `pixels`, (plan.height, plan.width, 3) uint8 RGB
        already resized, letterboxed (image top left) to the plan's tensor size."""
        ...
