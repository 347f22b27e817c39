"""The exception -> (envelope code, HTTP status) table of the API, case by case."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from facelens.core.errors import (
    InsufficientCredits,
    InvalidKey,
    InvalidParameter,
    NotFound,
    StoreUnavailable,
)
from facelens.entrypoints.api.envelope import answer_for
from facelens.entrypoints.api.ratelimit import RateLimited


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (InvalidParameter("task_list", "empty"), 100010, 200),
        (InvalidKey("unknown"), 100030, 200),
        (InsufficientCredits(3), 100040, 200),
        (NotFound("task 1"), 100010, 404),
        (StoreUnavailable("down"), 100099, 503),
        (RateLimited(0.2), 100099, 429),
        (RecursionError(), 100010, 200),
        (HTTPException(400, "bad body"), 100010, 200),
        (HTTPException(405, "Method Not Allowed"), 100010, 405),
        (HTTPException(502), 100099, 502),
        (KeyError("bug"), 100099, 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_exception_has_one_answer(exc: Exception, code: int, status: int) -> None:
    answer = answer_for(exc)
    assert (answer.code, answer.status) == (code, status)


def test_retry_after_comes_with_the_answers_that_ask_to_retry() -> None:
    limited = answer_for(RateLimited(1.2))
    assert limited.headers is not None and limited.headers(RateLimited(1.2)) == {"Retry-After": "2"}
    store = answer_for(StoreUnavailable("down"))
    assert store.headers is not None and "Retry-After" in store.headers(StoreUnavailable("x"))
