"""`POST /api/face/detect`: synchronous detection of an upload, a URL or base64 bytes."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from facelens.application.instant import VIDEO_HINT, InstantDetection
from facelens.application.intake import IntakeRules
from facelens.application.options import read_detect_options, to_detect_options
from facelens.core.callbacks import outcome_fields
from facelens.core.domain import Account, TaskOutcome
from facelens.core.errors import InvalidParameter
from facelens.entrypoints.api.deps import AuthDep, InstantDep, RulesDep
from facelens.entrypoints.api.envelope import SUCCESS, envelope
from facelens.entrypoints.api.schemas import DetectUrlRequest, Envelope

router = APIRouter(tags=["detect"])


@router.post(
    "/api/face/detect",
    response_model=Envelope,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": DetectUrlRequest.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "options": {
                                "type": "string",
                                "description": "JSON object: the same options as the JSON "
                                "body (score_threshold, landmarks, ...).",
                            },
                        },
                        "required": ["file"],
                    }
                },
            }
        }
    },
)
async def detect(
    request: Request, auth: AuthDep, instant: InstantDep, rules: RulesDep
) -> JSONResponse:
    """Detect faces now: multipart `file` upload, or JSON `image_url` / `image_base64`.
    One credit, refunded when the image cannot be analysed."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        outcome = await _from_upload(request, auth.account, instant, rules)
    else:
        outcome = await _from_json(request, auth.account, instant, rules)
    return envelope(SUCCESS, outcome_fields(outcome))


async def _from_upload(
    request: Request, account: Account, instant: InstantDetection, rules: IntakeRules
) -> TaskOutcome:
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidParameter("file", "a multipart file field named 'file' is required")
    raw_options = form.get("options")
    given: dict[str, Any] = {}
    if isinstance(raw_options, str) and raw_options.strip():
        given = _json_object("options", raw_options)
    options = read_detect_options(given, rules.options, "options")
    data = await upload.read()
    return await instant.from_bytes(account, data, upload.content_type or "", options)


async def _from_json(
    request: Request, account: Account, instant: InstantDetection, rules: IntakeRules
) -> TaskOutcome:
    body = _json_object("body", (await request.body()).decode("utf-8", errors="replace"))
    for key in ("video_url", "target_video_url", "video_base64"):
        if key in body:
            raise InvalidParameter(key, VIDEO_HINT)
    payload = DetectUrlRequest.model_validate(body)
    options = to_detect_options(payload, rules.options, "body")
    if (payload.image_url is None) == (payload.image_base64 is None):
        raise InvalidParameter("body", "give exactly one of image_url or image_base64")
    if payload.image_url is not None:
        rules.check_url("image_url", payload.image_url)
        return await instant.from_url(account, payload.image_url, options)
    try:
        data = base64.b64decode(payload.image_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter("image_base64", "not valid base64") from None
    return await instant.from_bytes(account, data, "", options)


def _json_object(field: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidParameter(field, "not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidParameter(field, "must be a JSON object")
    return value
