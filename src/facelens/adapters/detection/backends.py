"""Which inference backend a service uses, and opening a model on it.

`auto` picks OpenVINO when it is installed and ONNX Runtime has no GPU provider here:
on this project's AVX-512 CPUs its bf16 inference is ~1.4-1.5x faster than ONNX
Runtime's fp32 at the same AP (docs/detection-notes.md). With a GPU, ONNX Runtime's
CUDA provider wins.
"""

from __future__ import annotations

from facelens.adapters.detection.inference import InferenceSession, PixelNormalisation
from facelens.adapters.detection.onnx_backend import CPU, available_providers, create_session
from facelens.adapters.detection.openvino_backend import OpenVinoSession, openvino_available
from facelens.core.errors import ModelError

BACKENDS: tuple[str, ...] = ("onnxruntime", "openvino")


def resolve_backend(backend: str | None = None) -> str:
    """`onnxruntime` or `openvino` for a requested backend (None or "auto": see module
    doc). ValueError for an unknown name, ModelError for OpenVINO when not installed."""
    if backend in (None, "auto"):
        if available_providers()[0] == CPU and openvino_available():
            return "openvino"
        return "onnxruntime"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: auto, {', '.join(BACKENDS)}")
    if backend == "openvino" and not openvino_available():
        raise ModelError("backend 'openvino' needs the openvino package: pip install openvino")
    return backend


def open_session(
    onnx_bytes: bytes, normalisation: PixelNormalisation, backend: str, threads: int
) -> InferenceSession:
    """The model on `backend` (a `resolve_backend` answer); ModelError for a bad graph."""
    if backend == "openvino":
        return OpenVinoSession(onnx_bytes, normalisation, threads)
    return create_session(onnx_bytes, normalisation, threads=threads)
