"""The `{code, message, data}` envelope and the mapping of errors onto it.

Business outcomes answer HTTP 200 with a code (clients of the hosted API read `code`);
the extensions use 404 for unknown ids, and unexpected trouble answers 100099 with HTTP
500 (503 with Retry-After when the database is unreachable) and only a request id:
never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
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
        if not loc and isinstance(error.get("input"), bytes):  # FastAPI left it unparsed
            return "invalid parameter body: send JSON with Content-Type: application/json"
        field = ""
        for part in loc:
            field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
        return f"invalid parameter {field or 'body'}: {error.get('msg', 'invalid')}"
    return "invalid parameters"


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """How one kind of exception is answered. `message` and `headers` may use `{exc}`
    (the exception's text) and `{rid}` (the request id); `log` is the level of a line
    logged with the request id (None: not logged)."""

    code: int
    status: int = 200
    message: str | Callable[[Any], str] | None = None
    headers: Callable[[Any], dict[str, str]] | None = None
    log: int | None = None
    log_traceback: bool = False


def _http_answer(exc: StarletteHTTPException) -> ErrorAnswer:
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (non-UTF-8, absurd nesting): a bad request
        # body is a business outcome like any other 100010. Its cause says which, in the
        # words the other body errors use (FastAPI's own text names neither).
        cause = exc.__cause__
        why = (
            "nested too deeply"
            if isinstance(cause, RecursionError)
            else "not valid JSON"
            if isinstance(cause, ValueError)  # UnicodeDecodeError: not UTF-8
            else "{exc.detail}"
        )
        return ErrorAnswer(INVALID_PARAMETERS, message=f"invalid parameter body: {why}")
    code = INVALID_PARAMETERS if exc.status_code < 500 else UNKNOWN_ERROR
    return ErrorAnswer(code, exc.status_code, message="{exc.detail}")


ERRORS: dict[type[Exception], ErrorAnswer] = {
    RequestValidationError: ErrorAnswer(INVALID_PARAMETERS, message=describe_validation),
    # A route validating a body itself (model_validate) with wrong client input.
    ValidationError: ErrorAnswer(INVALID_PARAMETERS, message=describe_validation),
    InvalidParameter: ErrorAnswer(INVALID_PARAMETERS, message="{exc}"),
    InvalidKey: ErrorAnswer(ACCESS_DENIED, message="Access denied: {exc}"),
    InsufficientCredits: ErrorAnswer(INSUFFICIENT_CREDITS),
    NotFound: ErrorAnswer(INVALID_PARAMETERS, 404, message="not found: {exc}"),
    StoreUnavailable: ErrorAnswer(
        UNKNOWN_ERROR,
        503,
        message="Service temporarily unavailable (request id {rid})",
        headers=lambda _: {"Retry-After": STORE_RETRY_AFTER_S},
        log=logging.WARNING,
    ),
    RateLimited: ErrorAnswer(
        UNKNOWN_ERROR,
        429,
        message=RATE_LIMITED_MESSAGE,
        headers=lambda exc: {"Retry-After": exc.retry_after_header},
    ),
    # Only hostile input nests deep enough for a parser to hit the recursion limit.
    RecursionError: ErrorAnswer(
        INVALID_PARAMETERS, message="invalid parameter body: nested too deeply", log=logging.WARNING
    ),
    # JSON may escape an unpaired surrogate ("\ud800"): a str no UTF-8 column, hash or
    # callback body can hold. Only client input makes one; the transaction rolls back.
    UnicodeEncodeError: ErrorAnswer(
        INVALID_PARAMETERS,
        message="invalid parameter body: a string holds an unpaired UTF-16 surrogate",
        log=logging.WARNING,
    ),
    Exception: ErrorAnswer(
        UNKNOWN_ERROR,
        500,
        message="Unknown error (request id {rid})",
        # Answered outside the middleware that echoes the id: echo it here.
        headers=lambda _: {"X-Request-ID": "{rid}"},
        log=logging.ERROR,
        log_traceback=True,
    ),
}
"""Exception -> envelope code and HTTP status; the most specific class listed wins.
Starlette's HTTPException is answered by `_http_answer` (its status decides)."""


def answer_for(exc: Exception) -> ErrorAnswer:
    if isinstance(exc, StarletteHTTPException):
        return _http_answer(exc)
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return ERRORS[Exception]


async def answer_error(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: looks the exception up in `ERRORS`."""
    answer = answer_for(exc)
    rid = request_id(request)
    if answer.log is not None:
        log.log(
            answer.log,
            "request %s: %s: %s",
            rid,
            type(exc).__name__,
            exc,
            exc_info=exc if answer.log_traceback else None,
        )
    text = answer.message
    message = text(exc) if callable(text) else text and text.format(exc=exc, rid=rid)
    headers = None
    if answer.headers is not None:
        headers = {k: v.format(rid=rid) for k, v in answer.headers(exc).items()}
    return envelope(answer.code, message=message, status=answer.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    for cls in (*ERRORS, StarletteHTTPException):
        app.add_exception_handler(cls, answer_error)
