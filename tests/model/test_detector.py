"""The real CenterFace model on real photos (WIDER FACE dev subset)."""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.factory import build_detector
from facelens.adapters.detection.weights import REGISTRY, load_registered, resource_path
from facelens.adapters.images import PillowDecoder
from facelens.adapters.widerface import WiderDataset
from facelens.core.domain import DecodedImage, DetectOptions, Face
from facelens.core.errors import ModelError
from facelens.core.evaluation import evaluate_widerface
from facelens.entrypoints.cli.detect_cmds import run_dataset

COUPLES = ["19_Couple_Couple_19_881", "19_Couple_Couple_19_106", "19_Couple_Couple_19_936"]
DEFAULT = DetectOptions()


def photo(root: Path, name: str) -> Path:
    event = {"19": "19--Couple", "0_": "0--Parade", "4_": "4--Dancing"}[name[:2]]
    return root / "WIDER_val" / "images" / event / f"{name}.jpg"


def iou(a: Face, b: Face) -> float:
    ix = max(0.0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.area + b.area - inter)


def matches(found: list[Face], expected: list[Face], min_iou: float) -> int:
    return sum(1 for e in expected if any(iou(e, f) >= min_iou for f in found))


def test_the_dev_set_loads_with_its_ground_truth(dev_dataset: WiderDataset) -> None:
    assert len(dev_dataset.images) == 194
    assert dev_dataset.face_count == 4259
    counted = {s: sum(len(g.keep[s]) for g in dev_dataset.ground_truth) for s in ("easy", "hard")}
    assert 0 < counted["easy"] < counted["hard"] <= 4259


@pytest.mark.parametrize("name", COUPLES)
def test_couples_are_found_where_the_annotations_are(
    widerface_dev: Path,
    dev_dataset: WiderDataset,
    detector: FaceDetector,
    decoder: PillowDecoder,
    name: str,
) -> None:
    image = decoder.decode(photo(widerface_dev, name).read_bytes())
    faces = detector.detect(image, DEFAULT)
    truth = next(g for g in dev_dataset.ground_truth if g.key.endswith(name))
    expected = [Face(x, y, w, h, 1.0) for x, y, w, h in truth.boxes.tolist()]
    # the two couple faces are the two largest; a blurred bystander may follow
    assert len(expected) == 2
    assert matches(faces[:2], expected, 0.5) == 2
    assert all(f.area < faces[1].area / 4 for f in faces[2:])
    for face in faces[:2]:
        assert set(face.landmarks) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
        assert face.landmarks["left_eye"][0] < face.landmarks["right_eye"][0]  # viewer's left
        assert face.landmarks["mouth_left"][0] < face.landmarks["mouth_right"][0]
        assert face.y < face.landmarks["nose"][1] < face.y + face.height


def test_a_crowd_gives_many_faces_and_options_apply(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    image = decoder.decode(photo(widerface_dev, "0_Parade_Parade_0_102").read_bytes())
    faces = detector.detect(image, DEFAULT)
    assert len(faces) >= 5
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    capped = detector.detect(image, DetectOptions(max_faces=3, landmarks="none"))
    assert [f.area for f in capped] == pytest.approx(areas[:3])
    assert all(not f.landmarks for f in capped)
    big = detector.detect(image, DetectOptions(min_face_size=40))
    assert all(max(f.width, f.height) >= 40 for f in big)
    strict = detector.detect(image, DetectOptions(score_threshold=0.8))
    assert len(strict) < len(faces)


def rotated_jpeg(path: Path, orientation: int, transpose: Image.Transpose) -> bytes:
    """The photo stored turned by `transpose`, tagged so viewers turn it back upright."""
    with Image.open(path) as original:
        stored = original.convert("RGB").transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("orientation", "transpose"),
    [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)],
)
def test_exif_rotated_copy_gives_the_same_faces_in_the_oriented_frame(
    widerface_dev: Path,
    detector: FaceDetector,
    decoder: PillowDecoder,
    orientation: int,
    transpose: Image.Transpose,
) -> None:
    path = photo(widerface_dev, COUPLES[0])
    upright = decoder.decode(path.read_bytes())
    stored_sideways = rotated_jpeg(path, orientation, transpose)
    with Image.open(io.BytesIO(stored_sideways)) as raw:
        assert raw.size == (upright.height, upright.width)  # the file itself is sideways
    turned = decoder.decode(stored_sideways)
    assert (turned.width, turned.height) == (upright.width, upright.height)
    expected = detector.detect(upright, DEFAULT)
    found = detector.detect(turned, DEFAULT)
    assert len(found) == len(expected) >= 2
    assert matches(found, expected, 0.8) == len(expected)


def face_free_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    gradient = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 255 / (w + h)], -1)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    blurred = np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(4)), np.float64)
    blurred = (blurred - blurred.min()) * 255 / (blurred.max() - blurred.min())
    return {
        "gradient": gradient.astype(np.uint8),
        "noise": noise,
        "blurred noise": blurred.astype(np.uint8),
        "flat gray": np.full((h, w, 3), 128, np.uint8),
    }


@pytest.mark.parametrize("kind", list(face_free_images()))
def test_face_free_images_give_no_faces_at_the_default_threshold(
    detector: FaceDetector, kind: str
) -> None:
    pixels = face_free_images()[kind]
    image = DecodedImage(pixels, pixels.shape[1], pixels.shape[0], "RAW")
    assert detector.detect(image, DEFAULT) == []


def test_concurrent_calls_from_threads_agree_with_sequential_ones(
    widerface_dev: Path, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    images = [decoder.decode(photo(widerface_dev, n).read_bytes()) for n in COUPLES]
    sequential = [detector.detect(i, DEFAULT) for i in images]
    results: dict[int, list[Face]] = {}

    def work(n: int) -> None:
        results[n] = detector.detect(images[n], DEFAULT)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[n] for n in range(len(images))] == sequential


def test_accuracy_on_a_slice_of_the_dev_set(
    dev_dataset: WiderDataset, detector: FaceDetector, decoder: PillowDecoder
) -> None:
    couples = [i for i in dev_dataset.images if i.key.startswith("19--")][:12]
    subset = WiderDataset(dev_dataset.root, couples, dev_dataset.ground_truth)
    run = run_dataset(subset, detector, decoder)
    truth = [g for g in dev_dataset.ground_truth if g.key in run.predictions]
    ap = evaluate_widerface(run.predictions, truth)
    assert ap["easy"] > 0.85
    assert len(run.seconds) == 12


def test_the_sha256_check_refuses_a_tampered_copy(tmp_path: Path) -> None:
    original = resource_path(REGISTRY["centerface"])
    tampered = tmp_path / "centerface.onnx"
    shutil.copyfile(original, tampered)
    with tampered.open("r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match="sha256"):
        load_registered("centerface", path=tampered)
    with pytest.raises(ModelError, match="unknown model"):
        build_detector("no-such-model")


def test_retinaface_and_an_onnx_path_also_work(
    widerface_dev: Path, decoder: PillowDecoder, tmp_path: Path
) -> None:
    image = decoder.decode(photo(widerface_dev, COUPLES[0]).read_bytes())
    retina = build_detector("retinaface-mnet025")
    assert retina.family.name == "retinaface"
    assert len(retina.detect(image, DEFAULT)) >= 2
    onnx_file = tmp_path / "my-centerface.onnx"
    onnx_file.write_bytes(load_registered("centerface").onnx_bytes)
    from_path = build_detector(str(onnx_file))
    assert from_path.family.name == "centerface"
    assert from_path.detect(image, DEFAULT) == build_detector().detect(image, DEFAULT)
    not_a_model = tmp_path / "broken.onnx"
    not_a_model.write_bytes(b"not a protobuf")
    with pytest.raises(ModelError):
        build_detector(str(not_a_model))
