"""Which request, task and account a log line is about, without passing ids around.

A request or a task opens a `log_context`; every log record written inside it (in the
same asyncio task, or in threads started with its context) carries those ids, which
the log formatter writes out (`entrypoints/logs.py`). `note()` adds an id learnt later
on (the account, once the key is checked) to the context already open, so the
request's closing log line has it too.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, replace


@dataclass(slots=True)
class LogFields:
    request_id: str | None = None
    task_id: int | None = None
    account_id: int | None = None

    def known(self) -> dict[str, str | int]:
        """The ids that are set, in a fixed order."""
        known: dict[str, str | int] = {}
        if self.request_id is not None:
            known["request_id"] = self.request_id
        if self.task_id is not None:
            known["task_id"] = self.task_id
        if self.account_id is not None:
            known["account_id"] = self.account_id
        return known


_CURRENT: contextvars.ContextVar[LogFields | None] = contextvars.ContextVar(
    "facelens_log_fields", default=None
)


def current_fields() -> LogFields | None:
    return _CURRENT.get()


@contextlib.contextmanager
def log_context(
    *, request_id: str | None = None, task_id: int | None = None, account_id: int | None = None
) -> Iterator[LogFields]:
    """Ids for the log lines written inside the block; inherits the enclosing ones.

    The fields object is a fresh copy, so `note()` inside never changes the enclosing
    context (a task's account does not leak into the next task of the same worker).
    """
    outer = _CURRENT.get()
    fields = replace(outer) if outer is not None else LogFields()
    if request_id is not None:
        fields.request_id = request_id
    if task_id is not None:
        fields.task_id = task_id
    if account_id is not None:
        fields.account_id = account_id
    token = _CURRENT.set(fields)
    try:
        yield fields
    finally:
        _CURRENT.reset(token)


def note(*, task_id: int | None = None, account_id: int | None = None) -> None:
    """Add an id to the open context (no-op outside one)."""
    fields = _CURRENT.get()
    if fields is None:
        return
    if task_id is not None:
        fields.task_id = task_id
    if account_id is not None:
        fields.account_id = account_id
