"""`facelens db purge --older-than DAYS`: retention on demand.

The same deletion as the background retention loop (adapters/store/retention.py):
finished tasks that ended more than DAYS ago, with their callbacks, attempts and
results, a batch per transaction; the ledger stays. Imports the store only when run.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer
from rich.console import Console


def db_purge(
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            min=0,
            help="Purge finished tasks that ended more than DAYS days ago.",
        ),
    ],
    batch: Annotated[int, typer.Option(min=1, help="Tasks per transaction.")] = 200,
) -> None:
    """Delete finished tasks older than DAYS now, with their callbacks and results
    (personal data); the ledger and balances are kept. Prints how many went."""
    from facelens.entrypoints.config import load_settings

    settings = load_settings(os.environ)
    purged = asyncio.run(_purge(settings.resolved_database_url, older_than, batch))
    Console(stderr=True).print(f"purged {purged} finished tasks older than {older_than:g} days")
    print(purged)


async def _purge(database_url: str, days: float, batch: int) -> int:
    from facelens.adapters.store.sql_store import open_store
    from facelens.application.clock import SystemClock
    from facelens.application.retention import purge_older_than

    store = await open_store(database_url)
    try:
        return await purge_older_than(store, SystemClock(), days, batch=batch)
    finally:
        await store.close()
