"""The session cache behind a service's detectors: each model opened once, each mode
built once, lazily and thread-safely.

A request may name any mode (`DetectOptions.mode`), so a service's detector reaches
the others through this cache; modes that use the same model share its session (one
copy of the weights in memory, one backend warm-up).
"""

from __future__ import annotations

import threading

from facelens.adapters.detection.backends import open_session
from facelens.adapters.detection.face_detector import FaceDetector
from facelens.adapters.detection.inference import InferenceSession, PixelNormalisation
from facelens.adapters.detection.model_runner import ModelRunner
from facelens.adapters.detection.modes import ModeSpec, mode_spec
from facelens.adapters.detection.weights import LoadedModel, load_model


class SessionCache:
    """Models and modes of one backend, thread count and service threshold."""

    def __init__(
        self, threads: int, score_threshold: float | None, backend: str = "onnxruntime"
    ) -> None:
        self.threads = threads
        self.score_threshold = score_threshold
        self.backend = backend
        self._lock = threading.RLock()
        self._models: dict[str, tuple[LoadedModel, InferenceSession]] = {}
        self._modes: dict[str, FaceDetector] = {}

    def model(self, name: str) -> tuple[LoadedModel, InferenceSession]:
        """The model `name` (registry name or .onnx path) and its open session."""
        with self._lock:
            if name not in self._models:
                loaded = load_model(name)
                norm = PixelNormalisation.of(loaded.family)
                session = open_session(loaded.onnx_bytes, norm, self.backend, self.threads)
                self._models[name] = (loaded, session)
            return self._models[name]

    def mode(self, name: str) -> FaceDetector:
        """The detector of mode `name`; ValueError for an unknown mode, ModelError when
        its weights are missing."""
        spec = mode_spec(name)  # ValueError for an unknown mode, before any locking
        with self._lock:
            detector = self._modes.get(name)
            if detector is None:
                detector = self._build(spec)
                self._modes[name] = detector
            return detector

    def _build(self, spec: ModeSpec) -> FaceDetector:
        fusion = (spec.fusion_iou, spec.lone_penalty, spec.fusion_score)
        members = []
        for run in spec.runs:
            loaded, session = self.model(run.model)
            members.append(
                ModelRunner(loaded.name, session, loaded.family, run.passes, fusion, run.nms_iou)
            )
        return FaceDetector(
            spec.name,
            members,
            self,
            self.score_threshold if self.score_threshold is not None else spec.score_threshold,
            mode=spec.name,
            flip=spec.flip,
            fusion_iou=spec.fusion_iou,
            lone_penalty=spec.lone_penalty,
            fusion_score=spec.fusion_score,
        )
