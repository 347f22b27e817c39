"""ONNX Runtime sessions: the only module that imports onnxruntime.

Settings chosen from measurements on the target CPU (shared/notes/detectors-measured.md):
graph optimisation ALL (layout transforms to NCHWc: ~2x over none), a fixed number of
intra-op threads (default 2: one inference uses the cores it was given, parallelism
between requests is the pipeline's semaphore), and no spinning, because a spinning pool
nearly doubles latency when the API, the fetcher and the decoder share the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facelens.adapters.detection.inference import PixelNormalisation
from facelens.core.detection.plan import InputPlan, build_tensor
from facelens.core.errors import ModelError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def available_providers(prefer_gpu: bool = True) -> list[str]:
    """CUDA first when this onnxruntime build has it (and it is wanted), then CPU."""
    present = ort.get_available_providers()
    chosen = [CUDA] if prefer_gpu and CUDA in present else []
    return [*chosen, CPU]


@dataclass(slots=True)
class OnnxSession:
    """An `InferenceSession` on ONNX Runtime: one image input, named outputs.

    `infer` is thread-safe (ORT sessions are); the float tensor is built in NumPy.
    """

    session: Any
    input_name: str
    output_names: list[str]
    normalisation: PixelNormalisation

    def infer(
        self, pixels: npt.NDArray[np.uint8], plan: InputPlan
    ) -> list[npt.NDArray[np.float32]]:
        norm = self.normalisation
        tensor = build_tensor(pixels, plan, norm.mean, norm.std, norm.bgr)
        outputs = self.session.run(self.output_names, {self.input_name: tensor})
        return [np.asarray(out, dtype=np.float32) for out in outputs]


def create_session(
    model: bytes,
    normalisation: PixelNormalisation,
    threads: int = 2,
    providers: Sequence[str] | None = None,
) -> OnnxSession:
    """Build a session from serialized ONNX bytes; raises ModelError for a bad graph.

    Telemetry is switched off first: a start-up once hung on ONNX Runtime's telemetry
    store under ~/.cache while several processes loaded models at the same time, and a
    self-hosted service has no business phoning home anyway.
    """
    disable_telemetry = getattr(ort, "disable_telemetry_events", None)
    if callable(disable_telemetry):
        disable_telemetry()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # warnings about unused initializers are noise
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(
            model, sess_options=options, providers=list(providers or available_providers())
        )
    except Exception as exc:  # ORT raises its own exception types for any bad graph
        raise ModelError(f"onnxruntime could not load the model: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"a face model takes one image input, this one takes {len(inputs)}")
    return OnnxSession(
        session=session,
        input_name=str(inputs[0].name),
        output_names=[str(o.name) for o in session.get_outputs()],
        normalisation=normalisation,
    )
