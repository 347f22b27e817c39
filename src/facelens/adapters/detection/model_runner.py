"""One model run at one or more scale passes, merged into one set of candidates.

A pass (`ScalePass`) is one inference at a scale of the planned size; several are
merged by weighted box fusion. Each pass's candidates go through the family's NMS and
the pass's size calibration before fusion, and come back in the oriented original's
pixels. Which passes a model runs is the mode's choice (`modes.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facelens.adapters.detection.inference import InferenceSession
from facelens.adapters.detection.mirror import unmirror
from facelens.adapters.detection.modes import FUSION_IOU
from facelens.adapters.detection.resize import resized
from facelens.core.detection.boxes import Detections, FusionScore, fuse, fuse_into, nms
from facelens.core.detection.families import ModelFamily, ScalePass
from facelens.core.detection.plan import coarse_scale, detection_scale, pass_scale, plan_input
from facelens.core.detection.selection import face_sizes, size_calibrated
from facelens.core.domain import DecodedImage

CROWD_FACES = 3
"""Confident faces after which a coarse pass is skipped (see `_frame_is_crowded`): the
frame-filling faces it exists for came with at most one confident part box on the dev
photos, so on photos of three or more faces it can only cost time."""


class ModelRunner:
    """One model (one backend session) run at one or more scale passes; thread-safe."""

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
        self.session = session
        self.family = family
        self.passes = tuple(passes or family.passes)
        """The inferences per image; several are merged by weighted box fusion."""
        self.fusion = fusion
        """`fuse`'s IoU, lone penalty and cluster score for merging the passes."""
        self.nms_iou = family.nms_iou if nms_iou is None else nms_iou

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
        pixels = resized(image.pixels, plan.width, plan.height) if plan.resizes else image.pixels
        if step.flip:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
        outputs = self.session.infer(pixels, plan)
        dets = self.family.decode(outputs, plan.tensor_width, plan.tensor_height, threshold)
        if not len(dets):
            return dets
        dets = dets.centred_within(plan.width, plan.height).clipped(plan.width, plan.height)
        if step.flip:
            dets = unmirror(dets, plan.width)
        if step.min_input_px > 0:
            dets = dets.take(face_sizes(dets) >= step.min_input_px)
        dets = dets.take(nms(dets.boxes, dets.scores, self.nms_iou))
        dets = size_calibrated(
            dets, step.small_face_px, step.small_face_floor, self.family.default_threshold
        )
        # model pixels -> original pixels, through the resize and the decoder's reduction
        to_original = plan.factor * image.scale
        return dets.scaled(to_original).clipped(image.width, image.height)
