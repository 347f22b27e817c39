"""Detection options, declared once: the wire model and the one way to the domain.

Every entrypoint reads the options the same way: `POST /api/aigc/task/submit`
(`additional_params`), both forms of `POST /api/face/detect` (the JSON body's fields,
the multipart `options` field) and `facelens detect`. Types and ranges are declared on
`DetectParams`; what the running detector can do (landmark modes, attributes, modes)
is injected as `OptionRules`, built by the wiring from the adapters' registries;
`to_detect_options` is the pure function from the two to `DetectOptions`.

Adding a field: an option every entrypoint takes goes on `DetectParams` and into
`to_detect_options` (and onto `DetectOptions`). A field only queued tasks take (the
video ones: `target_video_url` as the alternative to `target_image_url`,
`frame_interval_ms`, `max_frames`, `start_ms`, `end_ms`) goes on `AdditionalParams`
and is carried into the task by `IntakeRules.task` (application/intake.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from facelens.core.domain import DetectOptions, LandmarksMode
from facelens.core.errors import InvalidParameter

MAX_MIN_FACE_SIZE = 4096
MAX_MAX_FACES = 10_000


def _landmarks_number(value: Any) -> Any:
    """`"landmarks": 68` means "68": clients send the number as often as the string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class DetectParams(BaseModel):
    """The detection options (all optional). Unknown keys are accepted and ignored.

    Strict types: `true` is not a number and `"0.5"` is not one either, whatever the
    entrypoint (a lax parser would read them differently in JSON and in form fields).
    """

    model_config = ConfigDict(extra="allow", strict=True)

    score_threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        None, description="Minimum face score, 0..1 (default: the model's documented default)."
    )
    min_face_size: Annotated[int, Field(ge=1, le=MAX_MIN_FACE_SIZE)] | None = Field(
        None, description="Smallest face side to report, pixels."
    )
    max_faces: Annotated[int, Field(ge=1, le=MAX_MAX_FACES)] | None = Field(
        None, description="Report at most this many (largest) faces."
    )
    landmarks: Annotated[LandmarksMode, BeforeValidator(_landmarks_number)] = Field(
        "5",
        description='"5" (default: five named points), "68" (also `landmarks_68`: the 68-point '
        'iBUG layout, [[x, y], ...] in image pixels) or "none".',
    )
    attributes: list[str] | None = Field(
        None, description='Extra per-face attributes: "pose" (yaw/pitch/roll), "quality".'
    )
    mode: str | None = Field(
        None, description='"fast", "balanced" or "accurate" (default: FACELENS_DETECT_MODE).'
    )


class AdditionalParams(DetectParams):
    """One queued task's `additional_params`: what to analyse plus the options.
    Exactly one of `target_image_url` and `target_video_url` (checked by intake)."""

    target_image_url: str | None = Field(None, description="http(s) URL of the image to analyse.")
    target_video_url: str | None = Field(
        None,
        description="http(s) URL of a video (MP4/MOV, WebM/MKV, animated GIF/WebP) to analyse "
        "instead: one credit per analysed frame, max_frames reserved at submission.",
    )
    frame_interval_ms: Annotated[int, Field(ge=0)] = Field(
        1000, description="Video: analyse a frame every N ms (0 = every frame)."
    )
    max_frames: Annotated[int, Field(ge=1)] = Field(
        300, description="Video: at most this many frames (reserved as credits at submission)."
    )
    start_ms: Annotated[int, Field(ge=0)] = Field(0, description="Video: first grid point, ms.")
    end_ms: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Video: only frames before this time (exclusive), ms."
    )


@dataclass(frozen=True, slots=True)
class OptionRules:
    """The values the running detector answers (the wiring derives them from the
    adapters' registries); the defaults are the least any detector does."""

    landmark_modes: frozenset[str] = frozenset({"5", "none"})
    attributes: frozenset[str] = frozenset()
    modes: frozenset[str] = frozenset()


def to_detect_options(params: DetectParams, rules: OptionRules, where: str = "") -> DetectOptions:
    """The domain options; raises InvalidParameter naming `where.<field>` for a value
    this detector does not offer."""
    prefix = f"{where}." if where else ""
    if params.landmarks not in rules.landmark_modes:
        allowed = ", ".join(sorted(rules.landmark_modes))
        raise InvalidParameter(f"{prefix}landmarks", f"must be one of {allowed}")
    attributes = tuple(dict.fromkeys(params.attributes or ()))
    unknown = sorted(set(attributes) - rules.attributes)
    if unknown:
        raise InvalidParameter(f"{prefix}attributes", f"unsupported: {', '.join(unknown)}")
    if params.mode is not None and params.mode not in rules.modes:
        allowed = ", ".join(sorted(rules.modes)) or "none available"
        raise InvalidParameter(f"{prefix}mode", f"must be one of {allowed}")
    return DetectOptions(
        score_threshold=params.score_threshold,
        min_face_size=params.min_face_size,
        max_faces=params.max_faces,
        landmarks=params.landmarks,
        attributes=attributes,
        mode=params.mode,
    )


def read_detect_options(
    data: Mapping[str, Any], rules: OptionRules, where: str = ""
) -> DetectOptions:
    """`to_detect_options` of a plain mapping (a form field's JSON, the CLI's flags);
    a wrong type or range is an InvalidParameter naming the field too."""
    try:
        params = DetectParams.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"])
        field = ".".join(part for part in (where, name) if part) or "options"
        raise InvalidParameter(field, _with_input(error["msg"], error.get("input"))) from None
    return to_detect_options(params, rules, where)


def _with_input(message: str, given: Any) -> str:
    """pydantic's message plus the refused value when it is a short scalar, so a person
    sees what they typed (`--landmarks 17`) without echoing large or nested input."""
    if isinstance(given, str | int | float) and len(repr(given)) <= 40:
        return f"{message} (got {given!r})"
    return message
