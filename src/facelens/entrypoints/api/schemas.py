"""Wire models: what the HTTP API accepts and answers (documented in /docs).

They describe the hosted API's fields; the business rules (allowed values, limits,
URL checks) live in the application service so every entrypoint applies them alike.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AdditionalParams(BaseModel):
    """Per-task parameters. Unknown keys are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    target_image_url: str = Field(description="http(s) URL of the image to analyse.")
    score_threshold: float | None = Field(
        None, description="Minimum face score, 0..1 (default: the model's documented default)."
    )
    min_face_size: int | None = Field(None, description="Smallest face side to report, pixels.")
    max_faces: int | None = Field(None, description="Report at most this many (largest) faces.")
    landmarks: str | None = Field(
        None,
        description='"5" (default: five named points), "68" (also `landmarks_68`: the 68-point '
        'iBUG layout, [[x, y], ...] in image pixels) or "none".',
    )
    attributes: list[str] | None = Field(
        None, description='Extra per-face attributes: "pose" (yaw/pitch/roll), "quality".'
    )
    mode: str | None = Field(
        None, description='"fast", "balanced" or "accurate" (default: FACELENS_DETECT_MODE).'
    )


class TaskItem(BaseModel):
    additional_params: AdditionalParams
    callback_params: dict[str, Any] | None = Field(
        None, description="Any JSON object; echoed back as `request_context` in both callbacks."
    )


class SubmitRequest(BaseModel):
    aigc_type: str = Field(description='Must be "face_detect".')
    callback_url: str = Field(description="http(s) URL that receives the two callbacks.")
    task_list: list[TaskItem] = Field(description="1..100 tasks; one credit each.")


class SubmitData(BaseModel):
    credits_consumed: int
    creation_id: str = Field(description="32 hex characters grouping the request's tasks.")
    task_id_list: list[int] = Field(description="Task ids in submission order.")


class Envelope(BaseModel):
    code: int = Field(description="100000 success, 100010, 100030, 100040, 100099.")
    message: str
    data: Any = None


class SubmitEnvelope(Envelope):
    data: SubmitData | None = None


class DetectUrlRequest(BaseModel):
    """JSON body of the synchronous endpoint: exactly one of image_url / image_base64."""

    model_config = ConfigDict(extra="allow")

    image_url: str | None = None
    image_base64: str | None = None
    score_threshold: float | None = None
    min_face_size: int | None = None
    max_faces: int | None = None
    landmarks: str | None = None
    attributes: list[str] | None = None
    mode: str | None = None
