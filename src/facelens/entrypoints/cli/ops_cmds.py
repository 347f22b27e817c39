"""`facelens workers`: the worker processes the database has heard from lately.

Each worker upserts a heartbeat row every FACELENS_HEARTBEAT_SECONDS; one whose last
heartbeat is older than FACELENS_WORKER_LIVE_SECONDS is not listed (it died, or its
host lost the database). A worker that stopped gracefully removed its row.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from facelens.adapters.store.sql_store import open_store
from facelens.application.telemetry import WorkerBeat
from facelens.entrypoints.config import Settings, load_settings


async def live_workers(settings: Settings, window_s: float) -> Sequence[WorkerBeat]:
    store = await open_store(settings.resolved_database_url)
    try:
        return await store.live_workers(int(time.time() * 1000) - int(window_s * 1000))
    finally:
        await store.close()


def _ago(ms: int, now_ms: int) -> str:
    seconds = max(0, now_ms - ms) // 1000
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def workers(
    within: Annotated[
        float | None,
        typer.Option(
            help="Seconds since the last heartbeat for a worker to count as live "
            "[FACELENS_WORKER_LIVE_SECONDS]."
        ),
    ] = None,
) -> None:
    """Live worker processes (recent heartbeat): id, host, since, tasks done, last seen."""
    settings = load_settings(os.environ)
    window_s = within if within is not None else settings.worker_live_seconds
    beats = asyncio.run(live_workers(settings, window_s))
    if not beats:
        Console(stderr=True).print(f"no worker seen in the last {window_s:g} s")
        raise typer.Exit(1)
    now_ms = int(time.time() * 1000)
    table = Table("id", "host", "pid", "since", "tasks done", "last seen")
    for beat in beats:
        table.add_row(
            beat.worker_id,
            beat.host,
            str(beat.pid),
            _utc(beat.started_at_ms),
            str(beat.tasks_done),
            _ago(beat.last_seen_ms, now_ms),
        )
    Console(width=200).print(table)
