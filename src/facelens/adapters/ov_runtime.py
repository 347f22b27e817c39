"""OpenVINO sessions: an optional second CPU backend (bf16 on CPUs that have it).

Only imported when a mode asks for it. Same `run` contract as `runtime.OnnxSession`.
Each thread gets its own infer request (a compiled model is shared and thread-safe,
an infer request is not).
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from facelens.core.errors import ModelError


def openvino_available() -> bool:
    """Whether the optional `openvino` package is installed (found, not imported)."""
    return importlib.util.find_spec("openvino") is not None


class OpenVinoSession:
    """A compiled OpenVINO model with one image input; `run` is thread-safe."""

    def __init__(self, model: bytes, threads: int = 2, precision: str = "bf16") -> None:
        try:
            ov: Any = importlib.import_module("openvino")  # untyped; imported on first use
            core = ov.Core()
            hints = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if precision == "bf16" and "BF16" not in hints:
                precision = "f32"
            parsed = core.read_model(model, b"")
            config: dict[str, Any] = {
                "INFERENCE_NUM_THREADS": max(1, threads),
                "INFERENCE_PRECISION_HINT": precision,
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
            }
            self._compiled: Any = core.compile_model(parsed, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses for bad graphs
            raise ModelError(f"OpenVINO could not load the model: {exc}") from exc
        self.precision = precision
        self.providers = [f"OpenVINO CPU {precision}"]
        self._local = threading.local()

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._compiled.create_infer_request()
            self._local.request = request
        results = request.infer({0: tensor})
        return [np.array(results[out], dtype=np.float32) for out in self._compiled.outputs]
