"""The face detector: an ONNX model, its family's pre/post-processing, the scale rule.

`build_detector` is the one entry point the rest of the code uses. The detector it
returns holds an ONNX Runtime session and immutable settings only, so `detect` may be
called from several threads at once.

Default score threshold: each family's `default_threshold`; for CenterFace 0.5,
measured on the 194 widerface-dev photos (crowds, 4259 annotated faces) and on
face-free images:

* face-free images (smooth gradients, uniform and blurred noise, flat gray): no
  candidate at all above 0.05, so any threshold >= 0.05 gives no false faces there;
* in real photos, of the detections >= 0.5, 97.9 % overlap an annotated face
  (IoU >= 0.3); looking at the rest, most are real faces WIDER FACE did not annotate
  (blurred bystanders, masks) and about 10 in 194 crowd photos are not faces (brass
  instrument bells, shadows);
* 0.4 finds 21 % more annotated faces but triples the unmatched detections (102);
  0.6 leaves 4 unmatched but loses 23 % of the faces found at 0.5.

So 0.5 (also the CenterFace authors' demo value) is where an ordinary photo shows no
false faces while small and blurred faces are still reported. RetinaFace scores run
higher: its 0.8 gives a like precision (1466 detections matched, 17 not; at 0.7: 1742
and 43) and nothing >= 0.3 on the face-free images. Callers override it per request
(`DetectOptions.score_threshold`) or per service (`score_threshold=`).

Sizes: the scale rule is `facelens.core.detection.plan.detection_scale`: images run at
their original size up to a 2048 px long side; `min_face_size` m rescales so an m-pixel
face becomes the model's reliable size (16 px for both families), so small m
up-scales, large m down-scales (faster). Faces smaller than m are dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from facelens.adapters.dense_landmarks import dense_available, shared_landmarker
from facelens.adapters.dense_landmarks import to_json as points_json
from facelens.adapters.images import resize_rgb
from facelens.adapters.models import DEFAULT_MODEL, LoadedModel, load_model
from facelens.adapters.modes import DEFAULT_MODE, MODES, ModeSpec, mode_spec
from facelens.adapters.ov_runtime import OpenVinoSession, PixelNormalisation, openvino_available
from facelens.adapters.runtime import CPU, available_providers, create_session
from facelens.core.detection.boxes import Detections, FusionScore, fuse, fuse_into, nms
from facelens.core.detection.families import ModelFamily, ScalePass
from facelens.core.detection.plan import (
    build_tensor,
    coarse_scale,
    detection_scale,
    pad_pixels,
    pass_scale,
    plan_input,
)
from facelens.core.detection.pose import head_pose
from facelens.core.detection.quality import face_quality
from facelens.core.detection.selection import (
    face_sizes,
    filter_detections,
    largest_first,
    size_calibrated,
    to_faces,
    without_face_parts,
)
from facelens.core.domain import DecodedImage, DetectOptions, Face
from facelens.core.errors import ModelError

__all__ = [
    "DEFAULT_MODE",
    "MODES",
    "SUPPORTED_ATTRIBUTES",
    "SUPPORTED_LANDMARKS",
    "ModelDetector",
    "OnnxFaceDetector",
    "build_detector",
    "detector_from_model",
]

BACKENDS: tuple[str, ...] = ("onnxruntime", "openvino")


class InferenceSession(Protocol):
    """What a model detector needs from a backend session (`runtime.OnnxSession`,
    `ov_runtime.OpenVinoSession`)."""

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]: ...


CROWD_FACES = 3
"""Confident faces after which a coarse pass is skipped (see `_frame_is_crowded`): the
frame-filling faces it exists for came with at most one confident part box on the dev
photos, and skipping it on photos of three or more faces saves its ~5-8 ms there."""

FUSION_IOU = 0.4
"""Cluster IoU when several passes are fused (tuned on widerface-dev: 0.4 > 0.55)."""

SUPPORTED_ATTRIBUTES: frozenset[str] = frozenset({"pose", "quality"})
"""Values `DetectOptions.attributes` may hold; each adds `Face.extras[name]`."""
SUPPORTED_LANDMARKS: frozenset[str] = frozenset(
    {"5", "68", "none"} if dense_available() else {"5", "none"}
)
"""Values of `additional_params.landmarks` the detector can answer ("68": dlib's model,
see adapters.dense_landmarks, when dlib and its model package are installed)."""

_MIRROR_LANDMARKS = np.array([1, 0, 2, 4, 3], dtype=np.intp)
"""Landmark order after a horizontal flip: the eyes and the mouth corners swap."""


class ModelDetector:
    """One model (one ONNX Runtime session) run at one or more scale passes."""

    def __init__(
        self,
        name: str,
        session: InferenceSession,
        family: ModelFamily,
        passes: Sequence[ScalePass] | None = None,
        fusion: tuple[float, float, FusionScore] = (FUSION_IOU, 1.0, "max"),
        nms_iou: float | None = None,
    ) -> None:
        self.name = name
        self.family = family
        self.passes = tuple(passes or family.passes)
        """The inferences per image; several are merged by weighted box fusion."""
        self.fusion = fusion
        """`fuse`'s IoU, lone penalty and cluster score for merging the passes."""
        self.nms_iou = family.nms_iou if nms_iou is None else nms_iou
        self._session = session

    def candidates(
        self, image: DecodedImage, threshold: float, min_face_size: int | None = None
    ) -> Detections:
        """Merged candidates scoring above `threshold`, in original pixels, unsorted."""
        base = detection_scale(
            image.width, image.height, min_face_size, self.family.reliable_face_px
        )
        results = [
            self._run_pass(image, scale, step, threshold)
            for step in self.passes
            if not step.long_side and (scale := self._scale_of(image, base, step)) is not None
        ]
        merged = results[0] if len(results) == 1 else fuse(Detections.concat(results), *self.fusion)
        if self._frame_is_crowded(merged):
            return merged
        for step in self.passes:
            if step.long_side and (scale := self._scale_of(image, base, step)) is not None:
                merged = fuse_into(
                    merged, self._run_pass(image, scale, step, threshold), *self.fusion
                )
        return merged

    def _frame_is_crowded(self, dets: Detections) -> bool:
        """Whether the ordinary passes already found `CROWD_FACES` or more faces at the
        family's default threshold: then no face fills the frame, and a coarse pass
        (`ScalePass.long_side`) would find nothing new, so it is skipped."""
        confident = int(np.count_nonzero(dets.scores >= self.family.default_threshold))
        return confident >= CROWD_FACES

    @staticmethod
    def _scale_of(image: DecodedImage, base: float, step: ScalePass) -> float | None:
        """Model pixels per original pixel for `step`, None when it does not run here:
        `base * step.factor` (an up-scaling capped at `MAX_SIDE`, see `plan.pass_scale`),
        or a coarse pass's own scale (`plan.coarse_scale`)."""
        if step.reduced_photos_only and base >= 1.0:
            return None
        if step.long_side > 0:
            return coarse_scale(image.width, image.height, base, step.long_side)
        return pass_scale(image.width, image.height, base, step.factor)

    def _run_pass(
        self, image: DecodedImage, scale: float, step: ScalePass, threshold: float
    ) -> Detections:
        """One inference at `scale` model pixels per original pixel."""
        source_h, source_w = image.pixels.shape[:2]
        plan = plan_input(
            source_w, source_h, scale / image.scale, self.family.multiple, step.long_side
        )
        pixels = _resized(image.pixels, plan.width, plan.height) if plan.resizes else image.pixels
        if step.flip:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
        run_pixels = getattr(self._session, "run_pixels", None)
        if run_pixels is not None:  # OpenVINO normalises inside the graph (ov_runtime)
            outputs = run_pixels(pad_pixels(pixels, plan, self.family.pad_colour))
        else:
            fam = self.family
            outputs = self._session.run(build_tensor(pixels, plan, fam.mean, fam.std, fam.bgr))
        dets = self.family.decode(outputs, plan.tensor_width, plan.tensor_height, threshold)
        if not len(dets):
            return dets
        dets = dets.centred_within(plan.width, plan.height).clipped(plan.width, plan.height)
        if step.flip:
            dets = _unmirror(dets, plan.width)
        if step.min_input_px > 0:
            dets = dets.take(face_sizes(dets) >= step.min_input_px)
        dets = dets.take(nms(dets.boxes, dets.scores, self.nms_iou))
        dets = size_calibrated(
            dets, step.small_face_px, step.small_face_floor, self.family.default_threshold
        )
        # model pixels -> original pixels, through the resize and the decoder's reduction
        to_original = plan.factor * image.scale
        return dets.scaled(to_original).clipped(image.width, image.height)


_RESIZE_POOL = ThreadPoolExecutor(2, thread_name_prefix="facelens-resize")
"""Up-scaling runs as two strips at once: Pillow's bilinear resize is single-threaded
and took 10-14 ms of a ~90 ms balanced image (1024x768 -> 1152x864); two strips take
about half (balanced 3.6 % faster, paired; pixels within 1 level of the whole-image
resize, AP within 0.003)."""


def _resized(pixels: npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """`resize_rgb`, with an up-scaling to more than 0.5 MP split into two strips."""
    source_h, source_w = pixels.shape[:2]
    if height <= source_h or width * height < 500_000:
        return resize_rgb(pixels, width, height)
    image = Image.fromarray(pixels)
    out = np.empty((height, width, 3), dtype=np.uint8)
    ratio = source_h / height
    cut = height // 2

    def strip(rows: tuple[int, int]) -> None:
        box = (0.0, rows[0] * ratio, float(source_w), rows[1] * ratio)
        part = image.resize((width, rows[1] - rows[0]), Image.Resampling.BILINEAR, box=box)
        out[rows[0] : rows[1]] = np.asarray(part)

    list(_RESIZE_POOL.map(strip, ((0, cut), (cut, height))))
    return out


def _mirrored(image: DecodedImage) -> DecodedImage:
    pixels = np.ascontiguousarray(image.pixels[:, ::-1])
    return replace(image, pixels=pixels)


def _unmirror(dets: Detections, width: float) -> Detections:
    """Detections found on the mirrored image, in the unmirrored image's frame."""
    boxes = dets.boxes.copy()
    boxes[:, 0] = width - dets.boxes[:, 2]
    boxes[:, 2] = width - dets.boxes[:, 0]
    marks = dets.landmarks[:, _MIRROR_LANDMARKS].copy()
    marks[:, :, 0] = width - marks[:, :, 0]
    return Detections(boxes, dets.scores, marks)


def resolve_backend(backend: str | None = None) -> str:
    """`onnxruntime` or `openvino`; None/"auto": OpenVINO when it is installed and
    ONNX Runtime has no GPU provider here (measured: bf16 OpenVINO is ~1.5x faster on
    this project's AVX-512 CPUs at the same AP), else ONNX Runtime."""
    if backend in (None, "auto"):
        if available_providers()[0] == CPU and openvino_available():
            return "openvino"
        return "onnxruntime"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: auto, {', '.join(BACKENDS)}")
    if backend == "openvino" and not openvino_available():
        raise ModelError("backend 'openvino' needs the openvino package: pip install openvino")
    return backend


class _Sessions:
    """Per-detector-family cache: each model loaded once, each mode built once, lazily
    and thread-safely; modes that use the same model share its session."""

    def __init__(
        self, threads: int, score_threshold: float | None, backend: str = "onnxruntime"
    ) -> None:
        self.threads = threads
        self.score_threshold = score_threshold
        self.backend = backend
        self._lock = threading.RLock()
        self._models: dict[str, tuple[LoadedModel, InferenceSession]] = {}
        self._modes: dict[str, OnnxFaceDetector] = {}

    def model(self, name: str) -> tuple[LoadedModel, InferenceSession]:
        with self._lock:
            if name not in self._models:
                loaded = load_model(name)
                session: InferenceSession
                if self.backend == "openvino":
                    fam = loaded.family
                    pixels = PixelNormalisation(fam.mean, fam.std, fam.bgr)
                    session = OpenVinoSession(loaded.onnx_bytes, self.threads, normalisation=pixels)
                else:
                    session = create_session(loaded.onnx_bytes, threads=self.threads)
                self._models[name] = (loaded, session)
            return self._models[name]

    def add(self, detector: OnnxFaceDetector) -> None:
        if detector.mode is not None:
            with self._lock:
                self._modes.setdefault(detector.mode, detector)

    def mode(self, name: str) -> OnnxFaceDetector:
        spec = mode_spec(name)  # ValueError for an unknown mode, before any locking
        with self._lock:
            detector = self._modes.get(name)
            if detector is None:
                detector = self._build(spec)
                self._modes[name] = detector
            return detector

    def _build(self, spec: ModeSpec) -> OnnxFaceDetector:
        members = []
        for run in spec.runs:
            loaded, session = self.model(run.model)
            fusion = (spec.fusion_iou, spec.lone_penalty, spec.fusion_score)
            members.append(
                ModelDetector(loaded.name, session, loaded.family, run.passes, fusion, run.nms_iou)
            )
        return OnnxFaceDetector(
            spec.name,
            members,
            self.score_threshold if self.score_threshold is not None else spec.score_threshold,
            mode=spec.name,
            flip=spec.flip,
            fusion_iou=spec.fusion_iou,
            lone_penalty=spec.lone_penalty,
            fusion_score=spec.fusion_score,
            sessions=self,
        )


class OnnxFaceDetector:
    """A `Detector` (see application.ports): one or more models, fused; thread-safe.

    `detect` honours `DetectOptions.mode`: another mode's models are loaded on first
    use (once, under a lock) and kept. `name` is the mode name for a preset, the
    model name for a single model chosen by name or path.
    """

    def __init__(
        self,
        name: str,
        members: Sequence[ModelDetector],
        score_threshold: float | None = None,
        *,
        mode: str | None = None,
        flip: bool = False,
        fusion_iou: float = FUSION_IOU,
        lone_penalty: float = 1.0,
        fusion_score: FusionScore = "max",
        sessions: _Sessions | None = None,
    ) -> None:
        if not members:
            raise ValueError("a detector needs at least one model")
        self.name = name
        self.mode = mode
        self.members = tuple(members)
        self.family = self.members[0].family
        self.score_threshold = (
            self.family.default_threshold if score_threshold is None else float(score_threshold)
        )
        self.flip = flip
        self.fusion_iou = fusion_iou
        self.lone_penalty = lone_penalty
        self.fusion_score: FusionScore = fusion_score
        self._sessions = sessions or _Sessions(2, None)
        self._sessions.add(self)

    @classmethod
    def single(
        cls,
        name: str,
        session: InferenceSession,
        family: ModelFamily,
        score_threshold: float | None = None,
        passes: Sequence[ScalePass] | None = None,
        threads: int = 2,
    ) -> OnnxFaceDetector:
        """One model on an open session (its family's passes unless given)."""
        member = ModelDetector(name, session, family, passes)
        return cls(name, [member], score_threshold, sessions=_Sessions(threads, score_threshold))

    @property
    def passes(self) -> tuple[ScalePass, ...]:
        """The first model's passes (the only model's, outside the fused modes)."""
        return self.members[0].passes

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES

    def for_mode(self, mode: str | None) -> OnnxFaceDetector:
        """The detector for `mode` (None or this detector's own mode: itself).

        Raises ValueError for an unknown mode, ModelError when its weights are missing.
        """
        if mode is None or mode == self.mode:
            return self
        return self._sessions.mode(mode)

    def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        """Faces in the oriented original's pixels, largest first (see module doc)."""
        detector = self.for_mode(options.mode)
        threshold = (
            detector.score_threshold if options.score_threshold is None else options.score_threshold
        )
        dets = detector.candidates(image, threshold, options.min_face_size)
        dets = filter_detections(dets, threshold, options.min_face_size)
        dets = largest_first(without_face_parts(dets))
        named = options.landmarks != "none"  # building them costs ~20 us a face
        faces = to_faces(dets, landmarks=named, max_faces=options.max_faces)
        wanted = set(options.attributes) & SUPPORTED_ATTRIBUTES
        for face, marks in zip(faces, dets.landmarks, strict=False):
            if "pose" in wanted:
                face.extras["pose"] = head_pose(marks).to_json()
            if "quality" in wanted:
                box = (face.x, face.y, face.x + face.width, face.y + face.height)
                face.extras["quality"] = face_quality(image.pixels, box, image.scale).to_json()
        if options.landmarks == "68":
            dense = shared_landmarker()
            for face in faces:
                box = (face.x, face.y, face.x + face.width, face.y + face.height)
                face.extras["landmarks_68"] = points_json(dense.for_image(image, box))
        return faces

    def candidates(
        self, image: DecodedImage, threshold: float, min_face_size: int | None = None
    ) -> Detections:
        """Candidates of every model (and of the mirrored image when `flip`), fused."""
        parts = [m.candidates(image, threshold, min_face_size) for m in self.members]
        if self.flip:
            mirrored = _mirrored(image)
            parts += [
                _unmirror(m.candidates(mirrored, threshold, min_face_size), image.width)
                for m in self.members
            ]
        if len(parts) == 1:
            return parts[0]
        return fuse(Detections.concat(parts), self.fusion_iou, self.lone_penalty, self.fusion_score)


def detector_from_model(
    model: LoadedModel,
    threads: int = 2,
    score_threshold: float | None = None,
    passes: Sequence[ScalePass] | None = None,
) -> OnnxFaceDetector:
    """A single-model detector (its family's passes unless given)."""
    session = create_session(model.onnx_bytes, threads=threads)
    return OnnxFaceDetector.single(
        model.name, session, model.family, score_threshold, passes, threads
    )


def build_detector(
    model: str = DEFAULT_MODEL,
    threads: int = 2,
    score_threshold: float | None = None,
    mode: str | None = None,
    backend: str | None = None,
) -> OnnxFaceDetector:
    """The service's detector: a mode preset, or one model by name or .onnx path.

    * `mode` given: that preset (`MODES`); `model` is then ignored unless it names a
      model other than the default, which is refused (ValueError) to avoid surprises.
    * no `mode`, `model` the default (`centerface`): the default mode, `DEFAULT_MODE`.
    * no `mode`, another model: that model alone, with its family's passes.

    `backend`: see `resolve_backend` (default: OpenVINO bf16 when installed).
    Whichever it is, `detect` serves `DetectOptions.mode` too (loaded on first use).
    Raises ModelError when the weights are missing, tampered or not a face model,
    ValueError for an unknown mode. Slow (~0.1-0.3 s per model): call once at start-up.
    """
    sessions = _Sessions(threads, score_threshold, resolve_backend(backend))
    if mode is None and model == DEFAULT_MODEL:
        mode = DEFAULT_MODE
    if mode is not None:
        if model != DEFAULT_MODEL:
            raise ValueError(f"choose a mode ({mode!r}) or a model ({model!r}), not both")
        return sessions.mode(mode)
    loaded, session = sessions.model(model)
    member = ModelDetector(loaded.name, session, loaded.family)
    return OnnxFaceDetector(loaded.name, [member], score_threshold, sessions=sessions)
