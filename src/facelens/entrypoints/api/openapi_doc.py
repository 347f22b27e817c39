"""The served OpenAPI document, corrected where FastAPI's inference is wrong for this API.

FastAPI declares a 422 on every operation with parameters, but this API never sends
422: invalid input is answered by the envelope with code 100010 (HTTP 200, like every
business outcome; see `envelope.py`). The document is rewritten once, here, so the
routes stay as they are: the schema changes, the behaviour does not. (The Bearer
scheme itself comes from `deps.DECLARED_BEARER`, on every keyed operation.)
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ENVELOPE_REF = {"$ref": "#/components/schemas/Envelope"}
OUTCOMES = (
    "An envelope `{code, message, data}`. `code` 100000 is success; a refused request is "
    "answered HTTP 200 too, with its code: 100010 invalid parameters, 100030 access "
    "denied (missing, unknown or revoked key), 100040 insufficient credits."
)
ERROR_ANSWERS = {
    "404": "No such id for this account: code 100010.",
    "429": "Rate limited (too many requests, or too many failed keys from this address): "
    "code 100099, with Retry-After.",
    "503": "The database is unreachable: code 100099, with Retry-After.",
}


def install_openapi(app: FastAPI) -> None:
    """Serve the corrected document at /openapi.json (and so in /docs)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            correct(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def correct(schema: dict[str, Any]) -> None:
    """Drop the 422s and their schemas; describe the answers the API does send."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            if not path.startswith("/api/"):
                continue
            if "200" in responses:
                responses["200"]["description"] = OUTCOMES
            errors = ["503"]
            if "{" in path:  # an id of the caller's: unknown ones are 404
                errors.append("404")
            if operation.get("security"):  # keyed: `deps.authenticate` rate-limits
                errors.append("429")
            for status in sorted(errors):
                responses[status] = {
                    "description": ERROR_ANSWERS[status],
                    "content": {"application/json": {"schema": ENVELOPE_REF}},
                }
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, for the 422s
        ref = f'"#/components/schemas/{unused}"'
        if unused in schemas and ref not in json.dumps({**schema, "components": {}}):
            schemas.pop(unused)
