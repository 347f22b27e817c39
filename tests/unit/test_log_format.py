"""The two log formats on real `logging` calls (the end-to-end check through a real
request and task is tests/integration/test_operations.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import pathlib
from collections.abc import Iterator

import aiosqlite
import pytest

from facelens.application.logcontext import log_context, note
from facelens.entrypoints.logs import configure_logging

SIGNED = "https://user:pw@cdn.example/photos/a.jpg?X-Amz-Signature=deadbeef"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_context_ids_and_no_secrets(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    log = logging.getLogger("facelens.test")
    log.info("outside any context")
    with log_context(request_id="r1"):
        note(account_id=7)
        with log_context(task_id=42):
            log.warning("fetching %s", SIGNED)
        log.info("after the task")
    try:
        raise RuntimeError(f"boom at {SIGNED}")
    except RuntimeError:
        log.exception("failed")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 4
    first, fetching, after, failed = lines
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "info" and first["time"].endswith("Z")
    assert fetching == {
        "time": fetching["time"],
        "level": "warning",
        "logger": "facelens.test",
        "message": "fetching https://cdn.example/photos/a.jpg",
        "request_id": "r1",
        "task_id": 42,
        "account_id": 7,
    }
    assert after["request_id"] == "r1" and after["account_id"] == 7 and "task_id" not in after
    assert "boom at https://cdn.example/photos/a.jpg" in failed["exception"]
    assert "deadbeef" not in stream.getvalue() and "pw@" not in stream.getvalue()


def test_text_lines_stay_the_default_with_ids_appended(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    configure_logging("info", stream=stream)  # a second call replaces, never duplicates
    with log_context(request_id="r2", account_id=3):
        logging.getLogger("facelens.test").info("callback to %s", SIGNED)
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(
        "INFO facelens.test: callback to https://cdn.example/photos/a.jpg "
        "[request_id=r2 account_id=3]"
    )


def test_httpx_request_lines_are_quiet(restore_root: None) -> None:
    """httpx logs every request with its full URL at INFO."""
    configure_logging("debug", "json", io.StringIO())
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING


def test_debug_level_does_not_log_sql_parameters(
    restore_root: None, tmp_path: pathlib.Path
) -> None:
    """aiosqlite logs each statement with its parameters at DEBUG (key hashes, webhook
    secrets): FACELENS_LOG_LEVEL=debug must not write them."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream)

    async def query() -> None:
        async with aiosqlite.connect(tmp_path / "t.db") as db:
            await db.execute("SELECT ?", ("whsec_not_for_logs",))

    asyncio.run(query())
    assert "whsec_not_for_logs" not in stream.getvalue()


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("info", "xml")
