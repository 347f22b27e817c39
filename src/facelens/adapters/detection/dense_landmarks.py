"""Dense 68-point landmarks (the iBUG 300-W layout) with dlib's shape predictor.

The model is `shape_predictor_68_face_landmarks.dat` (Kazemi & Sullivan's ensemble of
regression trees, trained by Davis King on iBUG 300-W), shipped inside the PyPI
package `face-recognition-models` (installed with --no-deps, located with
`importlib.util.find_spec`, never imported) and run by dlib from the `dlib-bin` wheel.
Its sha256 is checked before dlib parses it, like the detectors' weights.

Nothing happens at import: dlib is imported and the 100 MB model read (~0.7 s) on the
first call, once, under a lock. dlib documents `shape_predictor` as safe to call from
several threads at once without synchronisation, so calls take no lock.

The predictor was trained on boxes from dlib's HOG face detector: square, from the
brows to the chin. CenterFace and RetinaFace boxes are taller (forehead to chin), so
the detector's box is mapped first (`PREDICTOR_BOX`, measured on widerface-dev by
`bench/landmarks68.py`: the centre moves down, the side follows the box width).
Without it the 68 points drift upwards and shrink; see the README for the numbers.

Point order (0-based, iBUG): 0-16 jaw, 17-21 and 22-26 brows, 27-35 nose (30 the tip),
36-41 and 42-47 eyes, 48-59 outer lips (48 and 54 the corners), 60-67 inner lips.
Eyes 36-41 and mouth corner 48 are on the image's left (viewer's left), like the
five-point `left_eye` and `mouth_left`.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from facelens.adapters.detection.packaged import PackagedFile, file_sha256
from facelens.core.domain import DecodedImage
from facelens.core.errors import ModelError

MODEL_FILE = PackagedFile(
    package="face_recognition_models",
    resource="models/shape_predictor_68_face_landmarks.dat",
    distribution="face-recognition-models==0.3.0",
    sha256="fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
)
POINTS = 68

EYE_LEFT = slice(36, 42)
EYE_RIGHT = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT = 48
MOUTH_RIGHT = 54

CONTOURS: tuple[tuple[int, int, bool], ...] = (
    (0, 17, False),  # jaw
    (17, 22, False),  # brow (viewer's left)
    (22, 27, False),  # brow (viewer's right)
    (27, 31, False),  # nose bridge
    (31, 36, False),  # nostrils
    (36, 42, True),  # eye (viewer's left)
    (42, 48, True),  # eye (viewer's right)
    (48, 60, True),  # outer lips
    (60, 68, True),  # inner lips
)
"""(start, stop, closed) runs of points that draw the face outline."""


@dataclass(frozen=True, slots=True)
class BoxMapping:
    """From a detector box to the square box the predictor expects.

    centre x = box centre x + `shift_x` * width; centre y = box centre y + `shift_y` *
    height; side = `side` * width.
    """

    shift_x: float = 0.0
    shift_y: float = 0.0
    side: float = 1.0


IDENTITY = BoxMapping()
"""Feed the detector's box unchanged (what the measurements compare against)."""

PREDICTOR_BOX = BoxMapping(shift_x=0.0, shift_y=0.04, side=1.09)
"""The mapping for CenterFace/RetinaFace boxes, measured by `bench/landmarks68.py`."""


def predictor_box(
    box: tuple[float, float, float, float], mapping: BoxMapping = PREDICTOR_BOX
) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) of the detector -> (x1, y1, x2, y2) for the predictor."""
    if mapping == IDENTITY:
        return box
    x1, y1, x2, y2 = box
    width, height = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + mapping.shift_x * width
    cy = (y1 + y2) / 2 + mapping.shift_y * height
    half = mapping.side * width / 2
    return (cx - half, cy - half, cx + half, cy + half)


class _Predictor(Protocol):
    """The part of `dlib.shape_predictor` used here (dlib ships no type hints)."""

    def __call__(self, image: npt.NDArray[np.uint8], box: Any) -> Any: ...


def dense_available() -> bool:
    """Whether dlib and the model package are installed (nothing is imported)."""
    names = ("dlib", MODEL_FILE.package)
    return all(importlib.util.find_spec(name) is not None for name in names)


def model_path() -> Path:
    """Where the installed model file is; ModelError when the package is missing."""
    return MODEL_FILE.path("68-point landmarks need the model")


class DenseLandmarker:
    """68 landmarks per face box; loads the model on first use; thread-safe."""

    def __init__(self, path: Path | None = None, mapping: BoxMapping = PREDICTOR_BOX) -> None:
        self._path = path
        self.mapping = mapping
        self._lock = threading.Lock()
        self._predictor: _Predictor | None = None
        self._rectangle: Any = None

    @property
    def loaded(self) -> bool:
        """Whether dlib has read the model (it does on the first `points` or `load`)."""
        return self._predictor is not None

    def load(self) -> None:
        """Check the file's sha256, then let dlib read it (once; ModelError on failure)."""
        with self._lock:
            if self._predictor is not None:
                return
            try:
                import dlib  # type: ignore[import-untyped]  # lazy: imported on first use
            except ImportError as exc:
                raise ModelError("68-point landmarks need dlib: pip install dlib-bin") from exc
            path = self._path or model_path()
            MODEL_FILE.check(file_sha256(path), path, "the landmark model")
            try:
                predictor = dlib.shape_predictor(str(path))
            except RuntimeError as exc:
                raise ModelError(f"dlib could not load {path}: {exc}") from exc
            self._rectangle = dlib.rectangle
            self._predictor = predictor

    def points(
        self, pixels: npt.NDArray[np.uint8], box: tuple[float, float, float, float]
    ) -> npt.NDArray[np.float64]:
        """(68, 2) points in `pixels`' coordinates for a detector box in the same frame."""
        if self._predictor is None:
            self.load()
        assert self._predictor is not None
        x1, y1, x2, y2 = predictor_box(box, self.mapping)
        rect = self._rectangle(round(x1), round(y1), round(x2), round(y2))
        shape = self._predictor(np.ascontiguousarray(pixels), rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        if points.shape != (POINTS, 2):
            raise ModelError(f"the landmark model gave {len(points)} points, not {POINTS}")
        return points

    def for_image(
        self, image: DecodedImage, box: tuple[float, float, float, float]
    ) -> npt.NDArray[np.float64]:
        """(68, 2) points in the oriented original's coordinates for a box in the same."""
        s = image.scale
        scaled = (box[0] * s, box[1] * s, box[2] * s, box[3] * s)
        return self.points(image.pixels, scaled) / s


def to_json(points: npt.NDArray[np.float64]) -> list[list[float]]:
    """The wire form: 68 [x, y] pairs, one decimal."""
    return [[round(float(x), 1), round(float(y), 1)] for x, y in points]


def five_from_68(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The five-point layout (eye centres, nose tip, mouth corners) from 68 points."""
    return np.stack(
        [
            points[EYE_LEFT].mean(axis=0),
            points[EYE_RIGHT].mean(axis=0),
            points[NOSE_TIP],
            points[MOUTH_LEFT],
            points[MOUTH_RIGHT],
        ]
    )


_SHARED = DenseLandmarker()
"""The process-wide landmarker. Creating it reads nothing: the model loads on first use."""


def shared_landmarker() -> DenseLandmarker:
    """The process-wide landmarker (the model is loaded once, on first use)."""
    return _SHARED
