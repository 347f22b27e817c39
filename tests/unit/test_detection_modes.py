"""Mode presets, backend choice and the mirrored pass, without running a model."""

from __future__ import annotations

import numpy as np
import pytest

from facelens.adapters.detection.backends import resolve_backend
from facelens.adapters.detection.mirror import unmirror
from facelens.adapters.detection.mode_names import MODE_NAMES
from facelens.adapters.detection.modes import DEFAULT_MODE, MODE_SPECS, MODES, mode_spec
from facelens.core.detection.boxes import Detections


def test_presets_are_named_fastest_first() -> None:
    assert MODES == ("fast", "balanced", "accurate") == MODE_NAMES
    assert DEFAULT_MODE in MODES
    assert all(mode_spec(m) is MODE_SPECS[m] and MODE_SPECS[m].runs for m in MODES)
    with pytest.raises(ValueError, match="known: fast, balanced, accurate"):
        mode_spec("turbo")


def test_unknown_backends_are_refused() -> None:
    assert resolve_backend("onnxruntime") == "onnxruntime"
    assert resolve_backend(None) in ("onnxruntime", "openvino")
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("tensorrt")


def test_unmirroring_swaps_sides_and_landmark_names() -> None:
    marks = np.array([[[10.0, 5], [30, 5], [20, 10], [12, 15], [28, 15]]])
    dets = Detections(np.array([[5.0, 0, 35, 20]]), np.array([0.9]), marks)
    back = unmirror(dets, 100.0)
    assert back.boxes.tolist() == [[65.0, 0, 95, 20]]
    assert back.landmarks[0, :, 0].tolist() == [70.0, 90, 80, 72, 88]  # left eye is leftmost
    assert back.landmarks[0, :, 1].tolist() == [5.0, 5, 10, 15, 15]
    again = unmirror(back, 100.0)
    assert np.allclose(again.boxes, dets.boxes) and np.allclose(again.landmarks, marks)
