"""OpenVINO sessions: an optional second CPU backend (bf16 on CPUs that have it).

Only imported when a service chooses it (`backends.resolve_backend`). A compiled model
is shared and thread-safe, an infer request is not: each thread gets its own.

The model takes the image itself (uint8 RGB, NHWC): the channel order, the float
conversion and the normalisation are compiled into the graph, so neither the NCHW
float tensor nor OpenVINO's own NCHW-to-blocked reorder of it is made (identical
outputs, less time: docs/detection-notes.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from facelens.adapters.detection.inference import PixelNormalisation
from facelens.core.detection.plan import InputPlan, pad_pixels
from facelens.core.errors import ModelError

WARM_UP_INPUT = (1536, 1536)
"""Input (height, width) of the start-up inference: covers a 1024-px photo at the
modes' up-scales in either orientation (larger inputs still work, they allocate)."""


def openvino_available() -> bool:
    """Whether the optional `openvino` package is installed (found, not imported)."""
    return importlib.util.find_spec("openvino") is not None


class OpenVinoSession:
    """An `InferenceSession` on OpenVINO's CPU plugin; `infer` is thread-safe."""

    def __init__(
        self,
        model: bytes,
        normalisation: PixelNormalisation,
        threads: int = 2,
        precision: str = "bf16",
        warm_up: tuple[int, int] | None = WARM_UP_INPUT,
    ) -> None:
        self.normalisation = normalisation
        try:
            ov: Any = importlib.import_module("openvino")  # untyped; imported on first use
            core: Any = ov.Core()
            hints = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if precision == "bf16" and "BF16" not in hints:
                precision = "f32"
            config = {
                "INFERENCE_NUM_THREADS": max(1, threads),
                "INFERENCE_PRECISION_HINT": precision,
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
                # Pinned, every worker process put its inference thread on core 0
                # while core 1 idled: 3 workers were no faster than 1 (README Video).
                "ENABLE_CPU_PINNING": False,
            }
            self._compiled: Any = core.compile_model(
                self._with_normalisation(ov, core.read_model(model, b"")), "CPU", config
            )
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses for bad graphs
            raise ModelError(f"OpenVINO could not load the model: {exc}") from exc
        self.precision = precision
        self._local = threading.local()
        if warm_up is not None:
            self._warm_up(*warm_up)

    def _with_normalisation(self, ov: Any, parsed: Any) -> Any:
        """The graph with a uint8 NHWC input, normalised inside."""
        preprocess = importlib.import_module("openvino.preprocess")
        ppp = preprocess.PrePostProcessor(parsed)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
        norm = self.normalisation
        if norm.bgr:
            steps = steps.reverse_channels()
        if any(norm.mean):
            steps = steps.mean(list(norm.mean))
        if any(v != 1.0 for v in norm.std):
            steps = steps.scale(list(norm.std))
        return ppp.build()

    def _warm_up(self, height: int, width: int) -> None:
        """One inference on a blank input of that size, so OpenVINO sizes its buffers
        once: a new input shape then costs ~20 ms on its first run instead of ~50-80
        ms whenever it is larger than every shape before (measured, CenterFace bf16)."""
        self._run(np.zeros((1, height, width, 3), dtype=np.uint8))

    def infer(
        self, pixels: npt.NDArray[np.uint8], plan: InputPlan
    ) -> list[npt.NDArray[np.float32]]:
        return self._run(pad_pixels(pixels, plan, self.normalisation.pad_colour))

    def _run(self, batch: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.float32]]:
        """The outputs for a (1, H, W, 3) uint8 RGB batch (H, W already padded)."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._compiled.create_infer_request()
            self._local.request = request
        results = request.infer({0: batch}, share_inputs=True)
        return [np.array(results[out], dtype=np.float32) for out in request.model_outputs]
