"""The `{code, message, data}` envelope and the mapping of errors onto it.

Business outcomes answer HTTP 200 with a code (clients of the hosted API read `code`);
the extensions use 404 for unknown ids, and unexpected trouble answers 100099 with HTTP
500 (503 with Retry-After when the database is unreachable) and only a request id:
never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from facelens.core.errors import (
    InsufficientCredits,
    InvalidKey,
    InvalidParameter,
    NotFound,
    StoreUnavailable,
)
from facelens.entrypoints.api.ratelimit import RATE_LIMITED_MESSAGE, RateLimited

log = logging.getLogger("facelens.api")

SUCCESS = 100000
INVALID_PARAMETERS = 100010
ACCESS_DENIED = 100030
INSUFFICIENT_CREDITS = 100040
UNKNOWN_ERROR = 100099

STORE_RETRY_AFTER_S = "5"
"""Retry-After (seconds) of a 503 answered because the database is unreachable."""

MESSAGES = {
    SUCCESS: "Request Success",
    INVALID_PARAMETERS: "Invalid parameters",
    ACCESS_DENIED: "Access denied",
    INSUFFICIENT_CREDITS: "Insufficient credits balance",
    UNKNOWN_ERROR: "Unknown error",
}


def envelope(
    code: int,
    data: Any = None,
    message: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"code": code, "message": message or MESSAGES[code], "data": data}
    return JSONResponse(body, status_code=status, headers=headers)


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def describe_validation(exc: RequestValidationError | ValidationError) -> str:
    """The first problem, naming the field the way the request spells it."""
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        if error.get("type") == "json_invalid":
            return "invalid parameter body: not valid JSON"
        field = ""
        for part in loc:
            field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
        return f"invalid parameter {field or 'body'}: {error.get('msg', 'invalid')}"
    return "invalid parameters"


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return envelope(INVALID_PARAMETERS, message=describe_validation(exc))

    async def on_model_validation(request: Request, exc: Exception) -> JSONResponse:
        # A route validating a body itself (model_validate) with wrong client input.
        assert isinstance(exc, ValidationError)
        return envelope(INVALID_PARAMETERS, message=describe_validation(exc))

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        return envelope(INVALID_PARAMETERS, message=str(exc))

    async def on_key(request: Request, exc: Exception) -> JSONResponse:
        return envelope(ACCESS_DENIED, message=f"Access denied: {exc}")

    async def on_credits(request: Request, exc: Exception) -> JSONResponse:
        return envelope(INSUFFICIENT_CREDITS)

    async def on_not_found(request: Request, exc: Exception) -> JSONResponse:
        return envelope(INVALID_PARAMETERS, message=f"not found: {exc}", status=404)

    async def on_store(request: Request, exc: Exception) -> JSONResponse:
        log.warning("request %s: store unavailable: %s", request_id(request), exc)
        return envelope(
            UNKNOWN_ERROR,
            message=f"Service temporarily unavailable (request id {request_id(request)})",
            status=503,
            headers={"Retry-After": STORE_RETRY_AFTER_S},
        )

    async def on_rate_limited(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimited)
        return envelope(
            UNKNOWN_ERROR,
            message=RATE_LIMITED_MESSAGE,
            status=429,
            headers={"Retry-After": exc.retry_after_header},
        )

    async def on_recursion(request: Request, exc: Exception) -> JSONResponse:
        # Only hostile input nests deep enough for a parser to hit the recursion limit.
        log.warning("request %s: input nested too deeply", request_id(request))
        return envelope(INVALID_PARAMETERS, message="invalid parameter body: nested too deeply")

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (non-UTF-8, absurd nesting): a bad
            # request body is a business outcome like any other 100010.
            return envelope(INVALID_PARAMETERS, message=f"invalid parameter body: {exc.detail}")
        code = INVALID_PARAMETERS if exc.status_code < 500 else UNKNOWN_ERROR
        return envelope(code, message=str(exc.detail), status=exc.status_code)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request %s: unexpected error", request_id(request), exc_info=exc)
        return envelope(
            UNKNOWN_ERROR,
            message=f"Unknown error (request id {request_id(request)})",
            status=500,
            # Answered outside the middleware that echoes the id: echo it here.
            headers={"X-Request-ID": request_id(request)},
        )

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_model_validation)
    app.add_exception_handler(InvalidParameter, on_invalid)
    app.add_exception_handler(InvalidKey, on_key)
    app.add_exception_handler(InsufficientCredits, on_credits)
    app.add_exception_handler(NotFound, on_not_found)
    app.add_exception_handler(StoreUnavailable, on_store)
    app.add_exception_handler(RateLimited, on_rate_limited)
    app.add_exception_handler(RecursionError, on_recursion)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
