"""Wire models: what the HTTP API accepts and answers (documented in /docs).

They describe the hosted API's fields. The detection options (and a task's
`additional_params`) are declared once in application/options.py, shared with the CLI;
the business rules (URL checks, limits) live in application/intake.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from facelens.application.options import AdditionalParams, DetectParams


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


class DetectUrlRequest(DetectParams):
    """JSON body of the synchronous endpoint: exactly one of image_url / image_base64,
    and the detection options at the top level."""

    image_url: str | None = None
    image_base64: str | None = None
