"""Process logging: text (default) or one JSON object per line (`FACELENS_LOG_FORMAT`).

Both formats carry the request, task and account ids of the open `log_context` and
pass every line through `core.redact.scrub`, so a signed URL's query string, a URL's
userinfo or an API key never reaches a log, whoever wrote the log call (our code,
httpx, SQLAlchemy or a traceback). JSON lines are for log shippers (Loki, ELK, Cloud
Logging): fixed keys, UTC timestamps, the exception as one string field.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal, TextIO

from facelens.application.logcontext import current_fields
from facelens.core.redact import scrub

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

QUIET_LOGGERS = ("alembic", "httpx", "httpcore", "aiosqlite")
"""Libraries that log routine work at INFO or DEBUG (httpx: one line per request with
the full URL; aiosqlite: every SQL statement with its parameters, key hashes and
webhook secrets included, at FACELENS_LOG_LEVEL=debug); warnings from them still show."""

_HANDLER_NAME = "facelens"


class ContextFilter(logging.Filter):
    """Attaches the open log context's ids to each record (as `record.log_fields`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current_fields()
        record.log_fields = fields.known() if fields is not None else {}
        return True


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created * 1000) % 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", request_id?, task_id?, account_id?,
    "exception"?}: one line per record, ids only where known."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        entry.update(getattr(record, "log_fields", {}))
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = scrub(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, plus `[request_id=… task_id=…]` where known; scrubbed."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields: dict[str, Any] = getattr(record, "log_fields", {})
        if fields:
            ids = " ".join(f"{key}={value}" for key, value in fields.items())
            head, newline, rest = line.partition("\n")  # ids before any traceback
            line = f"{head} [{ids}]{newline}{rest}"
        return scrub(line)


def make_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Root logging for a facelens process: one handler on stderr (or `stream`).

    Replaces a handler installed by an earlier call (tests, a CLI command calling
    another), so lines are never written twice."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(make_handler(log_format, stream))
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
