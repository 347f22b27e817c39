"""Accuracy modes and the pose/quality attributes, with the real models on real photos."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facelens.adapters.detection.attributes import ATTRIBUTE_NAMES
from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.factory import build_detector
from facelens.adapters.detection.modes import DEFAULT_MODE, MODES
from facelens.adapters.images import PillowDecoder
from facelens.core.domain import DecodedImage, DetectOptions, Face

FRONTAL = "19_Couple_Couple_19_125"  # largest face looks at the camera
TURNED = "19_Couple_Couple_19_110"  # largest face turned ~30 degrees
BOTH = ("pose", "quality")


def couple(root: Path, name: str) -> bytes:
    return (root / "WIDER_val" / "images" / "19--Couple" / f"{name}.jpg").read_bytes()


def largest(detector: FaceDetector, image: DecodedImage, **options: object) -> Face:
    faces = detector.detect(image, DetectOptions(attributes=BOTH, **options))  # type: ignore[arg-type]
    assert faces, "no face found"
    return faces[0]


def transformed(data: bytes, decoder: PillowDecoder, op: str) -> DecodedImage:
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
    if op == "flip":
        rgb = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif op == "rotate20":
        rgb = rgb.rotate(20, resample=Image.Resampling.BILINEAR, expand=True)
    elif op == "blur":
        rgb = rgb.filter(ImageFilter.GaussianBlur(3))
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return decoder.decode(out.getvalue())


def test_modes_and_capabilities_are_exported() -> None:
    assert MODES == ("fast", "balanced", "accurate")
    assert DEFAULT_MODE == "balanced"
    assert frozenset({"pose", "quality"}) == ATTRIBUTE_NAMES


def test_the_default_detector_is_the_default_mode(detector: FaceDetector) -> None:
    assert detector.mode == DEFAULT_MODE and detector.name == DEFAULT_MODE
    assert detector.for_mode(None) is detector
    assert detector.for_mode(DEFAULT_MODE) is detector


def test_each_mode_finds_the_couple(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    image = decoder.decode(couple(widerface_dev, FRONTAL))
    reference = detector.detect(image, DetectOptions(max_faces=2))
    for mode in MODES:
        found = detector.detect(image, DetectOptions(mode=mode, max_faces=2))
        assert len(found) == 2, mode
        for a in reference:  # the two faces are about the same size: any order
            assert any(
                abs(a.x - b.x) < 0.1 * a.width and abs(a.y - b.y) < 0.1 * a.height for b in found
            ), mode


def test_modes_load_once_even_from_several_threads(detector: FaceDetector) -> None:
    got: list[FaceDetector] = []
    threads = [
        threading.Thread(target=lambda: got.append(detector.for_mode("fast"))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(d is got[0] for d in got)
    assert got[0].name == "fast" and got[0].family.name == "retinaface"
    assert got[0].for_mode("balanced") is detector  # modes share one cache


def test_unknown_modes_are_refused(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="unknown detection mode"):
        detector.for_mode("turbo")
    with pytest.raises(ValueError, match="not both"):
        build_detector("retinaface-mnet025", mode="fast")


def test_a_frontal_face_has_small_yaw_and_roll(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    face = largest(detector, decoder.decode(couple(widerface_dev, FRONTAL)))
    pose = face.extras["pose"]
    assert abs(pose["yaw"]) < 12 and abs(pose["roll"]) < 10 and abs(pose["pitch"]) < 20
    quality = face.extras["quality"]
    assert 0.5 < quality["blur"] <= 1.0 and 0.2 < quality["brightness"] < 0.9


def test_a_mirrored_photo_mirrors_the_yaw(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    data = couple(widerface_dev, TURNED)
    yaw = largest(detector, decoder.decode(data)).extras["pose"]["yaw"]
    flipped = largest(detector, transformed(data, decoder, "flip")).extras["pose"]["yaw"]
    assert abs(yaw) > 20
    assert flipped * yaw < 0  # landmarks are not exactly mirror-equivariant: a few degrees
    assert flipped == pytest.approx(-yaw, abs=10)


def test_a_rotated_photo_adds_its_angle_to_the_roll(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    data = couple(widerface_dev, FRONTAL)
    roll = largest(detector, decoder.decode(data)).extras["pose"]["roll"]
    # PIL rotates counter-clockwise as the viewer sees it: roll grows by the angle
    rotated = largest(detector, transformed(data, decoder, "rotate20")).extras["pose"]["roll"]
    assert rotated == pytest.approx(roll + 20, abs=5)


def test_a_blurred_copy_scores_less_sharp(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    data = couple(widerface_dev, FRONTAL)
    sharp = largest(detector, decoder.decode(data)).extras["quality"]
    blurred = largest(detector, transformed(data, decoder, "blur")).extras["quality"]
    assert blurred["blur"] < sharp["blur"] - 0.2
    assert blurred["brightness"] == pytest.approx(sharp["brightness"], abs=0.03)


def test_attributes_need_no_landmarks_in_the_output(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    image = decoder.decode(couple(widerface_dev, FRONTAL))
    face = largest(detector, image, landmarks="none")
    assert face.landmarks == {} and set(face.extras) == {"pose", "quality"}
    plain = detector.detect(image, DetectOptions(max_faces=1))[0]
    assert plain.extras == {} and np.isclose(plain.x, face.x)
