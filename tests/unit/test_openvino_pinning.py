"""OpenVINO must not pin inference threads to cores: each worker process pins on its
own, so every process's one inference thread landed on core 0 while core 1 idled, and
3 worker processes on a 2-core machine were no faster than 1 (README Video, Scale)."""

from __future__ import annotations

import pytest

from facelens.adapters.detection.inference import PixelNormalisation
from facelens.adapters.detection.weights import load_model


def test_openvino_sessions_leave_threads_to_the_scheduler() -> None:
    pytest.importorskip("openvino")
    from facelens.adapters.detection.openvino_backend import OpenVinoSession

    loaded = load_model("centerface")
    session = OpenVinoSession(
        loaded.onnx_bytes, PixelNormalisation.of(loaded.family), threads=1, warm_up=None
    )
    assert session._compiled.get_property("ENABLE_CPU_PINNING") is False
