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

from collections.abc import Sequence

from facelens.adapters.images import resize_rgb
from facelens.adapters.models import DEFAULT_MODEL, LoadedModel, load_model
from facelens.adapters.runtime import OnnxSession, create_session
from facelens.core.detection.boxes import Detections, fuse, nms
from facelens.core.detection.families import ModelFamily, ScalePass
from facelens.core.detection.plan import build_tensor, detection_scale, plan_input
from facelens.core.detection.selection import (
    face_sizes,
    filter_detections,
    largest_first,
    to_faces,
)
from facelens.core.domain import DecodedImage, DetectOptions, Face

FUSION_IOU = 0.4
"""Cluster IoU when several passes are fused (tuned on widerface-dev: 0.4 > 0.55)."""


class OnnxFaceDetector:
    """A `Detector` (see application.ports) backed by one ONNX Runtime session."""

    def __init__(
        self,
        name: str,
        session: OnnxSession,
        family: ModelFamily,
        score_threshold: float | None = None,
        passes: Sequence[ScalePass] | None = None,
    ) -> None:
        self.name = name
        self.family = family
        self.score_threshold = (
            family.default_threshold if score_threshold is None else float(score_threshold)
        )
        self.passes = tuple(passes or family.passes)
        """The inferences per image; the seam where speed/accuracy modes plug in."""
        self._session = session

    def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        """Faces in the oriented original's pixels, largest first (see module doc)."""
        threshold = (
            self.score_threshold if options.score_threshold is None else options.score_threshold
        )
        dets = self.candidates(image, threshold, options.min_face_size)
        dets = largest_first(filter_detections(dets, threshold, options.min_face_size))
        return to_faces(dets, landmarks=options.landmarks != "none", max_faces=options.max_faces)

    def candidates(
        self, image: DecodedImage, threshold: float, min_face_size: int | None = None
    ) -> Detections:
        """Merged candidates scoring above `threshold`, in original pixels, unsorted."""
        base = detection_scale(
            image.width, image.height, min_face_size, self.family.reliable_face_px
        )
        results = [self._run_pass(image, base, step, threshold) for step in self.passes]
        if len(results) == 1:
            return results[0]
        return fuse(Detections.concat(results), FUSION_IOU)

    def _run_pass(
        self, image: DecodedImage, base: float, step: ScalePass, threshold: float
    ) -> Detections:
        """One inference at `base * step.factor` model pixels per original pixel."""
        source_h, source_w = image.pixels.shape[:2]
        plan = plan_input(
            source_w, source_h, base * step.factor / image.scale, self.family.multiple
        )
        pixels = resize_rgb(image.pixels, plan.width, plan.height) if plan.resizes else image.pixels
        tensor = build_tensor(pixels, plan, self.family.mean, self.family.std, self.family.bgr)
        outputs = self._session.run(tensor)
        dets = self.family.decode(outputs, plan.tensor_width, plan.tensor_height, threshold)
        if not len(dets):
            return dets
        dets = dets.centred_within(plan.width, plan.height).clipped(plan.width, plan.height)
        if step.min_input_px > 0:
            dets = dets.take(face_sizes(dets) >= step.min_input_px)
        dets = dets.take(nms(dets.boxes, dets.scores, self.family.nms_iou))
        # model pixels -> original pixels, through the resize and the decoder's reduction
        to_original = plan.factor * image.scale
        return dets.scaled(to_original).clipped(image.width, image.height)


def detector_from_model(
    model: LoadedModel,
    threads: int = 2,
    score_threshold: float | None = None,
    passes: Sequence[ScalePass] | None = None,
) -> OnnxFaceDetector:
    session = create_session(model.onnx_bytes, threads=threads)
    return OnnxFaceDetector(model.name, session, model.family, score_threshold, passes)


def build_detector(
    model: str = DEFAULT_MODEL,
    threads: int = 2,
    score_threshold: float | None = None,
) -> OnnxFaceDetector:
    """Load a registered model by name (or an .onnx path) and open its session.

    Raises ModelError when the weights are missing, tampered or not a face model.
    Slow (~0.1-0.3 s): call once at start-up, never per request.
    """
    return detector_from_model(load_model(model), threads=threads, score_threshold=score_threshold)
