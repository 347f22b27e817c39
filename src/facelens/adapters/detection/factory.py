"""`build_detector`, the one way the rest of the code gets a detector.

The detector it returns holds backend sessions and immutable settings only, so
`detect` may be called from several threads at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from facelens.adapters.detection.backends import resolve_backend
from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.inference import InferenceSession
from facelens.adapters.detection.model_runner import ModelRunner
from facelens.adapters.detection.modes import DEFAULT_MODE
from facelens.adapters.detection.sessions import SessionCache
from facelens.adapters.detection.weights import DEFAULT_MODEL
from facelens.core.detection.families import ModelFamily, ScalePass


def build_detector(
    model: str = DEFAULT_MODEL,
    threads: int = 2,
    score_threshold: float | None = None,
    mode: str | None = None,
    backend: str | None = None,
) -> FaceDetector:
    """The service's detector: a mode preset, or one model by name or .onnx path.

    * `mode` given: that preset (`modes.MODES`); `model` is then ignored unless it names
      a model other than the default, which is refused (ValueError) to avoid surprises.
    * no `mode`, `model` the default (`centerface`): the default mode, `DEFAULT_MODE`.
    * no `mode`, another model: that model alone, with its family's passes.

    `backend`: see `backends.resolve_backend` (default: OpenVINO bf16 when installed).
    Whichever it is, `detect` serves `DetectOptions.mode` too (loaded on first use).
    Raises ModelError when the weights are missing, tampered or not a face model,
    ValueError for an unknown mode. Slow (~0.1-0.3 s per model): call once at start-up.
    """
    sessions = SessionCache(threads, score_threshold, resolve_backend(backend))
    if mode is None and model == DEFAULT_MODEL:
        mode = DEFAULT_MODE
    if mode is not None:
        if model != DEFAULT_MODEL:
            raise ValueError(f"choose a mode ({mode!r}) or a model ({model!r}), not both")
        return sessions.mode(mode)
    loaded, session = sessions.model(model)
    member = ModelRunner(loaded.name, session, loaded.family)
    return FaceDetector(loaded.name, [member], sessions, score_threshold)


def describe(detector: object) -> tuple[str, str]:
    """The models a detector runs ("centerface", "a+b" for a fused mode) and its mode
    preset ("" for a single model chosen by name or path), for labels and probes: a
    preset's `name` is the mode, which says nothing about the weights it loaded."""
    if isinstance(detector, FaceDetector):
        return "+".join(member.name for member in detector.members), detector.mode or ""
    return str(getattr(detector, "name", "")), ""


def single_model_detector(
    name: str,
    session: InferenceSession,
    family: ModelFamily,
    score_threshold: float | None = None,
    passes: Sequence[ScalePass] | None = None,
    threads: int = 2,
) -> FaceDetector:
    """One model on an already open session (its family's passes unless given); other
    modes, when a request names one, load on ONNX Runtime with `threads`."""
    member = ModelRunner(name, session, family, passes)
    sessions = SessionCache(threads, score_threshold)
    return FaceDetector(name, [member], sessions, score_threshold)
