"""The service's `Detector`: one or more models fused, then the requested attributes.

A mode may run several models, and each on the mirrored image too; their candidates
are fused by weighted box fusion, filtered by the request's options, ordered largest
first, and become `Face`s with the attributes the request asks for (`attributes.py`).

Default score threshold: each family's `default_threshold` (CenterFace 0.5,
RetinaFace 0.8): the lowest at which ordinary photos show no false faces while small
and blurred faces are still reported, measured on widerface-dev and face-free images
(docs/detection-notes.md). Callers override it per request
(`DetectOptions.score_threshold`) or per service (`score_threshold=`).

Sizes: the scale rule is `facelens.core.detection.plan.detection_scale`: images run at
their original size up to a 2048 px long side; `min_face_size` m rescales so an m-pixel
face becomes the model's reliable size (16 px for both families), so small m
up-scales, large m down-scales (faster). Faces smaller than m are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from facelens.adapters.detection.attributes import with_attributes
from facelens.adapters.detection.mirror import mirrored, unmirror
from facelens.adapters.detection.model_runner import ModelRunner
from facelens.adapters.detection.modes import FUSION_IOU
from facelens.core.detection.boxes import Detections, FusionScore, fuse
from facelens.core.detection.selection import (
    filter_detections,
    largest_first,
    to_faces,
    without_face_parts,
)
from facelens.core.domain import DecodedImage, DetectOptions, Face


class ModeSource(Protocol):
    """Where a detector finds the detector of another mode (`sessions.SessionCache`)."""

    def mode(self, name: str) -> FaceDetector: ...


class FaceDetector:
    """A `Detector` (see application.ports): one or more models, fused; thread-safe.

    `detect` honours `DetectOptions.mode` through `modes`, which loads another mode's
    models on first use and keeps them. `name` is the mode name for a preset, the
    model name for a single model chosen by name or path. Runs on whichever backend
    its members' sessions were opened on.
    """

    def __init__(
        self,
        name: str,
        members: Sequence[ModelRunner],
        modes: ModeSource,
        score_threshold: float | None = None,
        *,
        mode: str | None = None,
        flip: bool = False,
        fusion_iou: float = FUSION_IOU,
        lone_penalty: float = 1.0,
        fusion_score: FusionScore = "max",
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
        self._modes = modes

    def for_mode(self, mode: str | None) -> FaceDetector:
        """The detector for `mode` (None or this detector's own mode: itself).

        Raises ValueError for an unknown mode, ModelError when its weights are missing.
        """
        if mode is None or mode == self.mode:
            return self
        return self._modes.mode(mode)

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
        return with_attributes(faces, dets.landmarks, image, options)

    def candidates(
        self, image: DecodedImage, threshold: float, min_face_size: int | None = None
    ) -> Detections:
        """Candidates of every model (and of the mirrored image when `flip`), fused."""
        parts = [m.candidates(image, threshold, min_face_size) for m in self.members]
        if self.flip:
            flipped = mirrored(image)
            parts += [
                unmirror(m.candidates(flipped, threshold, min_face_size), image.width)
                for m in self.members
            ]
        if len(parts) == 1:
            return parts[0]
        return fuse(Detections.concat(parts), self.fusion_iou, self.lone_penalty, self.fusion_score)
