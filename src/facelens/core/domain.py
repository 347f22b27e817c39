"""Domain types shared by every layer.

Plain frozen dataclasses so the core stays free of pydantic and of any driver; the
wire models live in application/options.py and the API layer, the storage rows in the
store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from facelens.core.timings import NOT_MEASURED, StageTimes, timings_json
from facelens.core.video import Sampling

if TYPE_CHECKING:  # only a type here: the admin commands never load NumPy
    import numpy as np
    import numpy.typing as npt

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
"""Five-point landmark names, left/right as seen by the viewer (image left = smaller x)."""

JsonObject = dict[str, Any]
LandmarksMode = Literal["5", "68", "none"]


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ProcessStatus(enum.IntEnum):
    """The hosted API's `process_status`: 1 = started, 2 = completed."""

    STARTED = 1
    COMPLETED = 2


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face in the oriented image's pixel coordinates."""

    x: float
    y: float
    width: float
    height: float
    score: float
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    extras: JsonObject = field(default_factory=dict)
    """Optional per-face additions (dense landmarks, pose, quality)."""

    @property
    def area(self) -> float:
        return self.width * self.height

    def to_json(self) -> JsonObject:
        """The wire form of one `result_list` entry (integers for the box, as the hosted API)."""
        out: JsonObject = {
            "x": round(self.x),
            "y": round(self.y),
            "width": round(self.width),
            "height": round(self.height),
            "score": round(float(self.score), 4),
        }
        if self.landmarks:
            out["landmarks"] = {
                name: [round(float(px), 1), round(float(py), 1)]
                for name, (px, py) in self.landmarks.items()
            }
        out.update(self.extras)
        return out


@dataclass(frozen=True, slots=True)
class DetectOptions:
    """Per-request detection knobs, validated (application/options.py declares the wire
    form and the rules; this is what the detector receives and the store keeps)."""

    score_threshold: float | None = None
    min_face_size: int | None = None
    max_faces: int | None = None
    landmarks: LandmarksMode = "5"
    attributes: tuple[str, ...] = ()
    mode: str | None = None

    def to_json(self) -> JsonObject:
        """The stored form: every field by name (tuples as lists)."""
        return {
            f.name: list(value) if isinstance(value, tuple) else value
            for f in fields(self)
            for value in (getattr(self, f.name),)
        }

    @classmethod
    def from_json(cls, data: JsonObject) -> DetectOptions:
        """The stored form back; keys it does not know (or no longer knows) are ignored,
        missing or null ones take the default. Only ever reads what `to_json` wrote."""
        known: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if value is not None:
                known[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**known)


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An image ready for detection: RGB uint8, EXIF orientation already applied.

    `scale` is how the pixels relate to the oriented original: when the decoder
    reduced a huge image (JPEG draft mode), `width`/`height` stay the original's and
    detections are mapped back by dividing by `scale`.
    """

    pixels: npt.NDArray[np.uint8]
    width: int
    height: int
    format: str
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class NewTask:
    """One entry of a submission, validated."""

    image_url: str
    callback_params: JsonObject
    options: DetectOptions
    video: Sampling | None = None
    """A video task: `image_url` is the video's URL, sampled this way."""

    @property
    def credits(self) -> int:
        """Charged at submission: 1, or a video's `max_frames` (what it does not use is
        refunded when it ends)."""
        return 1 if self.video is None else self.video.max_frames


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task a worker holds under a lease."""

    id: int
    creation_id: str
    account_id: int
    image_url: str
    callback_url: str
    callback_params: JsonObject
    options: DetectOptions
    attempts: int
    started_at_ms: int
    video: Sampling | None = None
    """A video task's sampling (None: an image task)."""
    created_at_ms: int | None = None
    """When it was submitted (for the queue-wait and total-time metrics)."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What processing one task produced, success or failure."""

    result_code: int
    """1 success, -1 failure (the hosted API's values)."""
    faces: tuple[Face, ...] = ()
    image_width: int | None = None
    image_height: int | None = None
    error_code: str = ""
    error_info: str = ""
    ended_at_ms: int = 0
    stages: StageTimes = NOT_MEASURED
    """How long fetching, decoding and detecting took (stored, shown as `timings`)."""

    @property
    def succeeded(self) -> bool:
        return self.result_code == 1


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """A callback a dispatcher holds under a lease, ready to send."""

    id: int
    task_id: int
    process_status: ProcessStatus
    callback_url: str
    body: str
    """The exact JSON text to POST; retries resend these same bytes."""
    attempts: int
    webhook_secret: str
    account_id: int | None = None
    """Whose task, for the attempt's log line."""


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One recorded HTTP attempt of a delivery."""

    attempted_at_ms: int
    http_status: int | None
    error: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryView:
    process_status: ProcessStatus
    status: DeliveryStatus
    attempts: int
    next_attempt_at_ms: int | None
    last_http_status: int | None
    last_error: str
    history: tuple[DeliveryAttempt, ...] = ()
    redelivered_at_ms: int | None = None
    """When the account last asked for this callback again (None: never)."""


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task as the query API shows it."""

    id: int
    creation_id: str
    status: TaskStatus
    image_url: str
    callback_params: JsonObject
    options: DetectOptions
    created_at_ms: int
    started_at_ms: int | None
    ended_at_ms: int | None
    result: JsonObject | None
    """The stored outcome: result_code, error_code, error_info, result_list, image."""
    deliveries: tuple[DeliveryView, ...] = ()
    video: JsonObject | None = None
    """A video task's sampling (and, once probed, "info"); None for an image."""
    progress: tuple[int, int] | None = None
    """A video task's (frames_done, frames_total) once probed."""
    stages: StageTimes = NOT_MEASURED
    """Stage timings stored with the outcome."""

    @property
    def timings(self) -> dict[str, int | None]:
        """queued_ms, fetch_ms, decode_ms, detect_ms, total_ms (null: did not run)."""
        return timings_json(self.created_at_ms, self.started_at_ms, self.ended_at_ms, self.stages)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    credits: int
    webhook_secret: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    account_id: int
    prefix: str
    created_at_ms: int
    revoked_at_ms: int | None


@dataclass(frozen=True, slots=True)
class Usage:
    """Counts of an account's tasks by status plus credits used and refunded."""

    tasks_by_status: dict[str, int]
    credits_charged: int
    credits_refunded: int
