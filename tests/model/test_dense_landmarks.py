"""68-point landmarks (dlib's shape predictor) and the annotated drawing, on real photos."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facelens.adapters.detection.attributes import landmark_choices
from facelens.adapters.detection.dense_landmarks import (
    IDENTITY,
    POINTS,
    PREDICTOR_BOX,
    BoxMapping,
    DenseLandmarker,
    five_from_68,
    model_path,
    predictor_box,
    shared_landmarker,
)
from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.drawing import AXIS_COLORS, DENSE_COLOR, draw_faces, face_pose
from facelens.adapters.images import PillowDecoder
from facelens.application.options import OptionRules, read_detect_options
from facelens.core.domain import LANDMARK_NAMES, DecodedImage, DetectOptions, Face
from facelens.core.errors import InvalidParameter, ModelError
from facelens.entrypoints.cli.main import app

FRONTAL = "19_Couple_Couple_19_125"  # three faces looking at the camera
DENSE = DetectOptions(landmarks="68")


def couple(root: Path, name: str = FRONTAL) -> Path:
    return root / "WIDER_val" / "images" / "19--Couple" / f"{name}.jpg"


@pytest.fixture(scope="module")
def frontal(widerface_dev: Path, decoder: PillowDecoder) -> DecodedImage:
    return decoder.decode(couple(widerface_dev).read_bytes())


def five(face: Face) -> np.ndarray:
    return np.array([face.landmarks[n] for n in LANDMARK_NAMES], dtype=np.float64)


def test_68_is_a_supported_landmark_mode_and_intake_follows_it() -> None:
    assert frozenset({"5", "68", "none"}) == landmark_choices()
    rules = OptionRules(landmark_modes=landmark_choices())
    assert read_detect_options({"landmarks": "68"}, rules, "p").landmarks == "68"
    assert read_detect_options({"landmarks": 68}, rules, "p").landmarks == "68"
    with pytest.raises(InvalidParameter) as info:
        read_detect_options({"landmarks": "17"}, rules, "p")
    assert info.value.field == "p.landmarks"


def test_importing_the_detector_neither_imports_dlib_nor_reads_the_model() -> None:
    code = (
        "import sys, facelens.adapters.detection.factory, "
        "facelens.adapters.detection.dense_landmarks as d; "
        "from facelens.adapters.detection.attributes import landmark_choices; "
        "assert '68' in landmark_choices(); "
        "assert 'dlib' not in sys.modules, 'dlib imported'; "
        "assert not d.shared_landmarker().loaded; print('lazy')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "lazy" in done.stdout, done.stderr


def test_each_face_gets_68_points_on_the_face_next_to_its_five(
    frontal: DecodedImage, detector: FaceDetector
) -> None:
    faces = detector.detect(frontal, DENSE)
    assert len(faces) == 3
    for face in faces:
        wire = face.to_json()
        assert set(wire["landmarks"]) == set(LANDMARK_NAMES)  # the five stay
        dense = np.array(wire["landmarks_68"], dtype=np.float64)
        assert dense.shape == (POINTS, 2)
        assert all(round(v, 1) == v for v in dense.ravel().tolist())  # one decimal
        # inside the box, with a margin for the chin and the jaw line
        margin_x, margin_y = 0.1 * face.width, 0.1 * face.height
        assert (dense[:, 0] >= face.x - margin_x).all()
        assert (dense[:, 0] <= face.x + face.width + margin_x).all()
        assert (dense[:, 1] >= face.y - margin_y).all()
        assert (dense[:, 1] <= face.y + face.height + margin_y).all()
        # the eye centres, nose tip and mouth corners agree with the detector's five
        marks = five(face)
        iod = float(np.linalg.norm(marks[1] - marks[0]))
        distance = np.linalg.norm(five_from_68(dense) - marks, axis=1) / iod
        assert distance[:2].max() < 0.2, distance  # eyes
        assert distance.mean() < 0.2, distance
        # iBUG order: jaw left to right, eyes 36-41 on the viewer's left
        assert dense[0, 0] < dense[8, 0] < dense[16, 0]
        assert dense[36:42, 0].mean() < dense[42:48, 0].mean()
        assert dense[19, 1] < dense[30, 1] < dense[57, 1] < dense[8, 1]  # brow, nose, lip, chin


def test_other_landmark_modes_add_no_dense_points(
    frontal: DecodedImage, detector: FaceDetector
) -> None:
    for mode in ("5", "none"):
        faces = detector.detect(frontal, DetectOptions(landmarks=mode))  # type: ignore[arg-type]
        assert faces and all("landmarks_68" not in f.extras for f in faces)


def test_the_box_mapping_is_a_square_moved_down(frontal: DecodedImage) -> None:
    box = (100.0, 200.0, 200.0, 330.0)
    assert predictor_box(box, IDENTITY) == box
    x1, y1, x2, y2 = predictor_box(box, BoxMapping(0.0, 0.1, 1.2))
    assert (x2 - x1, y2 - y1) == pytest.approx((120.0, 120.0))
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((150.0, 265.0 + 13.0))
    assert PREDICTOR_BOX.side > 1.0 and PREDICTOR_BOX.shift_y > 0.0  # what bench measured


def test_a_reduced_decode_gives_points_in_the_original_frame(
    frontal: DecodedImage, detector: FaceDetector
) -> None:
    face = detector.detect(frontal, DetectOptions(max_faces=1))[0]
    box = (face.x, face.y, face.x + face.width, face.y + face.height)
    full = shared_landmarker().for_image(frontal, box)
    half_pixels = np.asarray(Image.fromarray(frontal.pixels).reduce(2), np.uint8)
    half = DecodedImage(half_pixels, frontal.width, frontal.height, "JPEG", scale=0.5)
    reduced = shared_landmarker().for_image(half, box)
    assert np.abs(reduced - full).mean() < 0.03 * face.width


def test_concurrent_calls_agree_with_sequential_ones(
    frontal: DecodedImage, detector: FaceDetector
) -> None:
    faces = detector.detect(frontal, DetectOptions())
    boxes = [(f.x, f.y, f.x + f.width, f.y + f.height) for f in faces]
    marker = shared_landmarker()
    sequential = [marker.for_image(frontal, b) for b in boxes]
    results: dict[int, list[np.ndarray]] = {}

    def work(n: int) -> None:
        results[n] = [marker.for_image(frontal, b) for b in boxes * 20]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(4):
        for i, points in enumerate(results[n]):
            assert np.array_equal(points, sequential[i % len(boxes)])


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "shape_predictor_68_face_landmarks.dat"
    shutil.copyfile(model_path(), copy)
    with copy.open("r+b") as f:
        f.seek(1 << 20)
        byte = f.read(1)
        f.seek(1 << 20)
        f.write(bytes([byte[0] ^ 0xFF]))
    marker = DenseLandmarker(path=copy)
    with pytest.raises(ModelError, match="sha256"):
        marker.load()
    with pytest.raises(ModelError, match="sha256"):
        marker.points(np.zeros((64, 64, 3), np.uint8), (8.0, 8.0, 56.0, 56.0))


def pixels_near(canvas: Image.Image, xy: tuple[float, float], radius: int = 2) -> set[tuple]:
    x, y = round(xy[0]), round(xy[1])
    box = canvas.crop((x - radius, y - radius, x + radius + 1, y + radius + 1))
    return {tuple(p) for p in np.asarray(box).reshape(-1, 3).tolist()}


def test_the_drawing_shows_boxes_landmarks_68_points_and_pose(
    frontal: DecodedImage, detector: FaceDetector
) -> None:
    faces = detector.detect(frontal, DENSE)
    canvas = draw_faces(frontal, faces)
    plain = draw_faces(frontal, detector.detect(frontal, DetectOptions()))
    assert canvas.size == (frontal.width, frontal.height)
    for face in faces:
        assert (0, 255, 0) in pixels_near(canvas, (face.x, face.y + face.height / 2))  # box
        # (the pose axes and label are drawn over a few of them)
        shown = [DENSE_COLOR in pixels_near(canvas, xy, 1) for xy in face.extras["landmarks_68"]]
        assert sum(shown) >= 0.8 * POINTS
        pose = face_pose(face)  # computed from the five points: pose was not asked for
        assert pose is not None and "pose" not in face.extras
        nose = face.landmarks["nose"]
        length = 0.5 * min(face.width, face.height)
        for (dx, dy), color in zip(pose.image_axes(length), AXIS_COLORS, strict=True):
            if np.hypot(dx, dy) > 8:  # the facing axis of a frontal face is short
                tip = (nose[0] + 0.7 * dx, nose[1] + 0.7 * dy)
                assert color in pixels_near(canvas, tip, 2)
    # the 68-point outlines are what differs from a drawing without them
    changed = np.any(np.asarray(canvas) != np.asarray(plain), axis=-1)
    assert changed.sum() > 500


def test_the_cli_draws_and_prints_68_points(widerface_dev: Path, tmp_path: Path) -> None:
    runner = CliRunner(env={"FACELENS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    out = tmp_path / "drawn.png"
    args = ["detect", str(couple(widerface_dev)), "--landmarks", "68", "--json", "--draw", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    (image,) = json.loads(result.stdout)
    assert all(len(face["landmarks_68"]) == POINTS for face in image["result_list"])
    with Image.open(out) as drawn:
        assert drawn.size == (1024, 683) and drawn.format == "PNG"
    refused = runner.invoke(app, ["detect", str(couple(widerface_dev)), "--landmarks", "17"])
    assert refused.exit_code == 2 and "17" in refused.stderr
