"""OpenVINO sessions: an optional second CPU backend (bf16 on CPUs that have it).

Only imported when a mode asks for it. Same `run` contract as `runtime.OnnxSession`.
Each thread gets its own infer request (a compiled model is shared and thread-safe,
an infer request is not).

Given the family's normalisation, a session also takes the image itself
(`run_pixels`: uint8 RGB, NHWC): the channel order, the float conversion and the
normalisation are compiled into the graph, so neither the NCHW float tensor nor
OpenVINO's own NCHW-to-blocked reorder of it is made. Measured: identical outputs;
about 1.5 ms less per 1024x768 pass for the tensor, and a few ms less inside the
inference (the input reorder was 3-4 % of it).
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facelens.core.errors import ModelError

WARM_UP_INPUT = (1536, 1536)
"""Input (height, width) of the start-up inference: covers a 1024-px photo at the
modes' up-scales in either orientation (larger inputs still work, they allocate)."""


@dataclass(frozen=True, slots=True)
class PixelNormalisation:
    """How a model's float input is made from RGB pixels: channels reversed to BGR
    first when `bgr`, then `(value - mean) / std` per model channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool


def openvino_available() -> bool:
    """Whether the optional `openvino` package is installed (found, not imported)."""
    return importlib.util.find_spec("openvino") is not None


class OpenVinoSession:
    """A compiled OpenVINO model with one image input; `run` is thread-safe."""

    def __init__(
        self,
        model: bytes,
        threads: int = 2,
        precision: str = "bf16",
        normalisation: PixelNormalisation | None = None,
        warm_up: tuple[int, int] | None = WARM_UP_INPUT,
    ) -> None:
        try:
            ov: Any = importlib.import_module("openvino")  # untyped; imported on first use
            self._ov = ov
            self._core: Any = ov.Core()
            hints = self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if precision == "bf16" and "BF16" not in hints:
                precision = "f32"
            self._model = model
            self._config: dict[str, Any] = {
                "INFERENCE_NUM_THREADS": max(1, threads),
                "INFERENCE_PRECISION_HINT": precision,
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
            }
            self._compiled: Any = None
            self._pixels: Any = None
            if normalisation is None:
                self._compiled = self._compile(None)
            else:
                self._pixels = self._compile(normalisation)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses for bad graphs
            raise ModelError(f"OpenVINO could not load the model: {exc}") from exc
        self.precision = precision
        self.providers = [f"OpenVINO CPU {precision}"]
        self.normalisation = normalisation
        self.run_pixels: Callable[[npt.NDArray[np.uint8]], list[npt.NDArray[np.float32]]] | None = (
            self._run_pixels if normalisation is not None else None
        )
        """Present when built with a normalisation (`detectors` looks for it)."""
        self._lock = threading.Lock()
        self._local = threading.local()
        if warm_up is not None:
            self._warm_up(*warm_up)

    def _warm_up(self, height: int, width: int) -> None:
        """One inference on a blank input of that size, so OpenVINO sizes its buffers
        once: a new input shape then costs ~20 ms on its first run instead of ~50-80
        ms whenever it is larger than every shape before (measured, CenterFace bf16)."""
        if self.run_pixels is not None:
            self.run_pixels(np.zeros((1, height, width, 3), dtype=np.uint8))
        else:
            self.run(np.zeros((1, 3, height, width), dtype=np.float32))

    def _compile(self, normalisation: PixelNormalisation | None) -> Any:
        ov = self._ov
        parsed = self._core.read_model(self._model, b"")
        if normalisation is not None:
            preprocess = importlib.import_module("openvino.preprocess")
            ppp = preprocess.PrePostProcessor(parsed)
            ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
            ppp.input().model().set_layout(ov.Layout("NCHW"))
            steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
            if normalisation.bgr:
                steps = steps.reverse_channels()
            if any(normalisation.mean):
                steps = steps.mean(list(normalisation.mean))
            if any(v != 1.0 for v in normalisation.std):
                steps = steps.scale(list(normalisation.std))
            parsed = ppp.build()
        return self._core.compile_model(parsed, "CPU", self._config)

    def _request(self, name: str) -> Any:
        request = getattr(self._local, name, None)
        if request is None:
            compiled = self._compiled if name == "tensor" else self._pixels
            if compiled is None:  # the float-tensor graph, compiled on first use only
                with self._lock:
                    if self._compiled is None:
                        self._compiled = self._compile(None)
                compiled = self._compiled
            request = compiled.create_infer_request()
            setattr(self._local, name, request)
        return request

    def _outputs(self, request: Any, results: Any) -> list[npt.NDArray[np.float32]]:
        return [np.array(results[out], dtype=np.float32) for out in request.model_outputs]

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        request = self._request("tensor")
        return self._outputs(request, request.infer({0: tensor}, share_inputs=True))

    def _run_pixels(self, pixels: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.float32]]:
        """The outputs for a (1, H, W, 3) uint8 RGB image (H, W already padded)."""
        request = self._request("pixels")
        return self._outputs(request, request.infer({0: pixels}, share_inputs=True))
