"""The attribute registry: accepted values derive from it, Faces are copied, not mutated."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from facelens.adapters.detection.attributes import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    BASE_LANDMARKS,
    landmark_choices,
    requested,
    with_attributes,
)
from facelens.core.domain import DecodedImage, DetectOptions, Face


def test_accepted_values_derive_from_the_registry() -> None:
    assert {"pose", "quality"} == ATTRIBUTE_NAMES
    assert {a.name for a in ATTRIBUTES if a.option == "attributes"} == ATTRIBUTE_NAMES
    assert BASE_LANDMARKS <= landmark_choices() <= BASE_LANDMARKS | {"68"}
    wanted = requested(DetectOptions(attributes=("quality", "pose", "age"), landmarks="68"))
    assert [a.name for a in wanted] == ["pose", "quality", "68"]  # registry order
    assert requested(DetectOptions(landmarks="5")) == ()


def test_attributes_come_on_new_faces_and_the_originals_stay_as_they_were() -> None:
    pixels = np.zeros((100, 100, 3), np.uint8)
    pixels[20:80, 20:80] = 200
    image = DecodedImage(pixels=pixels, width=100, height=100, format="RAW", scale=1.0)
    face = Face(20.0, 20.0, 60.0, 60.0, 0.9, extras={"kept": 1})
    marks = np.array([[[35.0, 40], [65, 40], [50, 55], [38, 68], [62, 68]]])
    (out,) = with_attributes([face], marks, image, DetectOptions(attributes=("pose", "quality")))
    assert out is not face and face.extras == {"kept": 1}
    assert list(out.extras) == ["kept", "pose", "quality"]
    assert abs(out.extras["pose"]["roll"]) < 1.0  # level eyes
    assert 0.0 < out.extras["quality"]["brightness"] < 1.0
    assert with_attributes([face], marks, image, DetectOptions()) == [face]


def test_the_registry_imports_no_inference_library() -> None:
    code = (
        "import sys, facelens.adapters.detection.attributes as a; a.ATTRIBUTE_NAMES; "
        "heavy = {'numpy', 'onnxruntime', 'openvino', 'dlib', 'PIL'} & set(sys.modules); "
        "assert not heavy, heavy; print('light')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "light" in done.stdout, done.stderr
