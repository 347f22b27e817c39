"""Per-face attributes a request may ask for: one registry, the accepted values derive.

Each `Attribute` names the request value that asks for it, the `Face.extras` key its
answer goes under, and how it is computed from the image, the face box and the five
landmarks. The option checks (`ATTRIBUTE_NAMES`, `landmark_choices`) and the detector
(`with_attributes`) both read `ATTRIBUTES`, so adding an attribute is one entry here.

This module imports no inference package: the option checks import it in processes
that never detect (the API's validation, the admin CLI). Each compute function
imports what it needs on first call, and an optional attribute (dlib's 68 landmarks)
is probed for its packages when the accepted values are first asked for, not at import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from facelens.core.domain import DecodedImage, DetectOptions, Face

Box = tuple[float, float, float, float]
"""(x1, y1, x2, y2) in the oriented original's pixels."""

AttributeFn = Callable[["DecodedImage", Box, "npt.NDArray[np.float64]"], Any]
"""(image, face box, five landmarks (5, 2)) -> the JSON value stored in `Face.extras`."""


def _always() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Attribute:
    """One per-face attribute and how a request asks for it."""

    name: str
    """The value a request gives: an `attributes` entry, or the `landmarks` value."""
    option: Literal["attributes", "landmarks"]
    """The `additional_params` field that asks for it."""
    extra: str
    """The key of its value in `Face.extras` (and in each `result_list` face)."""
    compute: AttributeFn
    available: Callable[[], bool] = _always
    """Whether its optional packages are installed (probed once, when first asked)."""

    def asked_by(self, options: DetectOptions) -> bool:
        """Whether a request with `options` wants this attribute."""
        if self.option == "attributes":
            return self.name in options.attributes
        return options.landmarks == self.name


def _pose(image: DecodedImage, box: Box, marks: npt.NDArray[np.float64]) -> Any:
    """Yaw, pitch and roll fitted to the five landmarks (no model, no pixels)."""
    from facelens.core.detection.pose import head_pose

    return head_pose(marks).to_json()


def _quality(image: DecodedImage, box: Box, marks: npt.NDArray[np.float64]) -> Any:
    """Blur and brightness of the face crop, from the decoded pixels."""
    from facelens.core.detection.quality import face_quality

    return face_quality(image.pixels, box, image.scale).to_json()


def _landmarks_68(image: DecodedImage, box: Box, marks: npt.NDArray[np.float64]) -> Any:
    """dlib's 68 points for the box (its model is loaded on the first call)."""
    from facelens.adapters.detection.dense_landmarks import shared_landmarker, to_json

    return to_json(shared_landmarker().for_image(image, box))


def _dense_available() -> bool:
    from facelens.adapters.detection.dense_landmarks import dense_available

    return dense_available()


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("pose", "attributes", "pose", _pose),
    Attribute("quality", "attributes", "quality", _quality),
    Attribute("68", "landmarks", "landmarks_68", _landmarks_68, _dense_available),
)
"""Every attribute, in the order their keys appear in a face's JSON."""

ATTRIBUTE_NAMES: frozenset[str] = frozenset(a.name for a in ATTRIBUTES if a.option == "attributes")
"""Values `additional_params.attributes` (and `DetectOptions.attributes`) may hold."""

BASE_LANDMARKS: frozenset[str] = frozenset({"5", "none"})
"""`landmarks` values every install answers: the detector's five points, or none."""


@functools.cache
def landmark_choices() -> frozenset[str]:
    """Values of `additional_params.landmarks` this install can answer: the five points,
    none, and each landmark attribute whose packages are installed (probed once)."""
    extra = {a.name for a in ATTRIBUTES if a.option == "landmarks" and a.available()}
    return BASE_LANDMARKS | extra


def requested(options: DetectOptions) -> tuple[Attribute, ...]:
    """The attributes `options` asks for, in registry order (unknown names ignored)."""
    return tuple(a for a in ATTRIBUTES if a.asked_by(options))


def with_attributes(
    faces: Sequence[Face],
    landmarks: npt.NDArray[np.float64],
    image: DecodedImage,
    options: DetectOptions,
) -> list[Face]:
    """New faces carrying the attributes `options` asks for in their extras.

    `landmarks` holds each face's five points, (n, 5, 2), in the faces' order. Faces
    are frozen: each one with attributes is a copy with a new extras dict.
    """
    wanted = requested(options)
    if not wanted:
        return list(faces)
    out = []
    for face, marks in zip(faces, landmarks, strict=False):
        box = (face.x, face.y, face.x + face.width, face.y + face.height)
        extras = dict(face.extras)
        for attribute in wanted:
            extras[attribute.extra] = attribute.compute(image, box, marks)
        out.append(replace(face, extras=extras))
    return out
