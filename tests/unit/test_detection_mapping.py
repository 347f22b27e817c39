"""The detector's geometry with a stand-in session: boxes come back in the original
image's pixels whatever the decoder's reduction and the detector's resize were."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.factory import single_model_detector
from facelens.adapters.detection.inference import PixelNormalisation
from facelens.adapters.detection.onnx_backend import OnnxSession
from facelens.core.detection.families import CENTERFACE, ScalePass
from facelens.core.domain import DecodedImage, DetectOptions

FaceSpec = tuple[int, int, float, float, float]
"""cell x, cell y, width px, height px, score"""


class FakeCenterFace:
    """Answers every input with faces at fixed input-tensor positions (stride 4)."""

    def __init__(
        self,
        faces: list[FaceSpec],
        by_width: dict[int, list[FaceSpec]] | None = None,
    ) -> None:
        self.faces = faces  # (cell x, cell y, width px, height px, score)
        self.by_width = by_width or {}  # other faces for inputs of a given tensor width
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        tensor = next(iter(feed.values()))
        self.shapes.append(tensor.shape)
        h, w = tensor.shape[2] // 4, tensor.shape[3] // 4
        heat = np.zeros((1, 1, h, w), np.float32)
        scale = np.zeros((1, 2, h, w), np.float32)
        marks = np.zeros((1, 10, h, w), np.float32)
        marks[0, 1::2] = np.array([0.3, 0.7, 0.5, 0.35, 0.65])[:, None, None]
        for cx, cy, width, height, score in self.by_width.get(tensor.shape[3], self.faces):
            heat[0, 0, cy, cx] = score
            scale[0, :, cy, cx] = (math.log(height / 4), math.log(width / 4))
        return [heat, scale, np.zeros((1, 2, h, w), np.float32), marks]


def fake_session(fake: FakeCenterFace) -> OnnxSession:
    names = ["a", "b", "c", "d"]
    return OnnxSession(fake, "input", names, PixelNormalisation.of(CENTERFACE))


def detector(fake: FakeCenterFace, **kwargs: object) -> FaceDetector:
    session = fake_session(fake)
    return single_model_detector("fake", session, CENTERFACE, passes=(ScalePass(1.0),), **kwargs)  # type: ignore[arg-type]


def image(width: int, height: int, scale: float = 1.0) -> DecodedImage:
    pixels = np.zeros((round(height * scale), round(width * scale), 3), np.uint8)
    return DecodedImage(pixels=pixels, width=width, height=height, format="RAW", scale=scale)


def test_boxes_are_in_original_pixels_when_the_decoder_reduced_the_image() -> None:
    fake = FakeCenterFace([(10, 10, 16, 20, 0.9)])
    faces = detector(fake).detect(image(4000, 3200, scale=0.5), DetectOptions())
    assert fake.shapes == [(1, 3, 1600, 2016)]  # ran on the 2000x1600 pixels, padded
    (face,) = faces
    # tensor centre (42, 42), 16x20 -> original: everything doubled
    assert (face.x, face.y, face.width, face.height) == pytest.approx((68, 64, 32, 40))
    assert face.landmarks["left_eye"][0] < face.landmarks["right_eye"][0]
    assert face.landmarks["left_eye"][0] == pytest.approx(68 + 0.3 * 32)


def test_min_face_size_upscales_and_maps_back() -> None:
    fake = FakeCenterFace([(10, 10, 16, 16, 0.9)])
    faces = detector(fake).detect(image(200, 100), DetectOptions(min_face_size=8))
    assert fake.shapes == [(1, 3, 224, 416)]  # 2x: 400x200 padded to multiples of 32
    assert (faces[0].x, faces[0].width) == pytest.approx((17, 8))


def test_faces_smaller_than_min_face_size_are_dropped() -> None:
    fake = FakeCenterFace([(10, 10, 40, 40, 0.9), (40, 40, 12, 12, 0.9)])
    faces = detector(fake).detect(image(400, 400), DetectOptions(min_face_size=20))
    assert [round(f.width) for f in faces] == [50]  # 0.8x pass: 40 px -> 50 original


def test_options_threshold_max_faces_landmarks_and_order() -> None:
    fake = FakeCenterFace([(10, 10, 16, 16, 0.9), (40, 10, 32, 32, 0.6), (70, 10, 24, 24, 0.3)])
    det = detector(fake)
    default = det.detect(image(400, 200), DetectOptions())
    assert [f.score for f in default] == pytest.approx([0.6, 0.9])  # 0.5 default, largest first
    loose = det.detect(image(400, 200), DetectOptions(score_threshold=0.2, max_faces=2))
    assert [round(f.width) for f in loose] == [32, 24]
    bare = det.detect(image(400, 200), DetectOptions(landmarks="none"))
    assert all(f.landmarks == {} for f in bare)


def test_service_threshold_overrides_the_family_default() -> None:
    fake = FakeCenterFace([(10, 10, 16, 16, 0.4)])
    assert detector(fake).detect(image(200, 200), DetectOptions()) == []
    assert len(detector(fake, score_threshold=0.3).detect(image(200, 200), DetectOptions())) == 1


def test_boxes_are_clipped_to_the_image() -> None:
    fake = FakeCenterFace([(0, 0, 40, 40, 0.9)])
    (face,) = detector(fake).detect(image(100, 100), DetectOptions())
    assert (face.x, face.y) == (0, 0)
    assert face.width == pytest.approx(2 + 20)


def test_two_passes_are_fused_and_the_reduced_pass_adds_no_small_faces() -> None:
    full: list[FaceSpec] = [(25, 25, 64, 64, 0.6)]  # centre 102, 64 px
    half: list[FaceSpec] = [
        (12, 12, 34, 34, 0.9),
        (40, 40, 8, 8, 0.9),
    ]  # centre 50 (100), 68 px; a tiny one
    fake = FakeCenterFace([], by_width={416: full, 224: half})
    session = fake_session(fake)
    passes = (ScalePass(1.0), ScalePass(0.5, min_input_px=24.0))
    det = single_model_detector("fake", session, CENTERFACE, passes=passes)
    faces = det.detect(image(400, 400), DetectOptions())
    assert [s[2:] for s in fake.shapes] == [(416, 416), (224, 224)]
    (face,) = faces
    assert face.score == pytest.approx(0.9)
    # score-weighted mean of (70, 70, 64) and (66, 66, 68)
    assert face.x == pytest.approx((0.6 * 70 + 0.9 * 66) / 1.5)
    assert face.width == pytest.approx((0.6 * 64 + 0.9 * 68) / 1.5)


def test_a_reduced_photos_only_pass_runs_only_on_photos_planned_below_full_size() -> None:
    fake = FakeCenterFace([])
    session = fake_session(fake)
    passes = (ScalePass(1.0), ScalePass(0.5, min_input_px=24.0, reduced_photos_only=True))
    det = single_model_detector("fake", session, CENTERFACE, passes=passes)
    det.detect(image(400, 300), DetectOptions())
    assert [s[2:] for s in fake.shapes] == [(320, 416)]
    fake.shapes.clear()
    det.detect(image(4000, 3200, scale=0.5), DetectOptions())  # decoded at half size
    assert [s[2:] for s in fake.shapes] == [(1600, 2016), (800, 1024)]
