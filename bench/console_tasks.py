"""How fast the console's task list answers on a large account.

    .venv/bin/python -P bench/console_tasks.py [--db sqlite|postgres|both] [--tasks N]

Fills a fresh database (SQLite: a temp file; PostgreSQL: a database created from
template0 on 127.0.0.1:5432, migrated, dropped afterwards) with N tasks of one account
plus N of another (submitted through the real `SqlStore`, 100 per transaction, a tenth
of them failed), then times `SqlStore.list_tasks` (what `GET /api/aigc/tasks` runs:
one page of 20 full task views with their deliveries) for the first page, a page deep
in the history (`before_id` in the middle), and the status and creation_id filters,
and `daily_usage` over 30 days. Median of 20 calls each, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import SqlStore, open_store
from facelens.core.domain import DetectOptions, NewTask, TaskStatus
from facelens.core.self_service import DAY_MS, TaskFilter

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
NOW = 1_764_000_000_000


async def pg_admin(statement: str) -> None:
    engine = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def fill(store: SqlStore, tasks: int) -> tuple[int, str, int]:
    """Two accounts with `tasks` each; the first account's id, one of its creation ids
    and the id of its middle task."""
    accounts = [await store.create_account(f"a{i}", 10 * tasks, "whsec_x", NOW) for i in range(2)]
    creation = ""
    ids: list[int] = []
    for start in range(0, tasks, 100):
        for account in accounts:
            creation = uuid.uuid4().hex
            batch = [
                NewTask(f"https://img.example/{start + n}.jpg", {"n": start + n}, DetectOptions())
                for n in range(min(100, tasks - start))
            ]
            now = NOW - DAY_MS * 30 + (start * DAY_MS * 30) // tasks
            made = await store.submit(account.id, creation, "https://cb.example/", batch, now)
            if account is accounts[0]:
                ids += made
                first_creation = creation
    async with store.engine.begin() as conn:  # a tenth failed, as a busy account's are
        await conn.execute(sa.text("UPDATE tasks SET status = 'failed' WHERE id % 10 = 0"))
    return accounts[0].id, first_creation, ids[len(ids) // 2]


async def median_ms(call: Callable[[], Awaitable[Any]], runs: int = 20) -> float:
    await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(url: str, tasks: int) -> dict[str, float]:
    await upgrade(url)
    store = await open_store(url)
    try:
        account, creation, middle = await fill(store, tasks)
        since = NOW - 30 * DAY_MS
        return {
            "first page": await median_ms(lambda: store.list_tasks(account, TaskFilter(), 21)),
            "deep page": await median_ms(
                lambda: store.list_tasks(account, TaskFilter(before_id=middle), 21)
            ),
            "status=failed": await median_ms(
                lambda: store.list_tasks(account, TaskFilter(status=TaskStatus.FAILED), 21)
            ),
            "creation_id": await median_ms(
                lambda: store.list_tasks(account, TaskFilter(creation_id=creation), 21)
            ),
            "usage 30 days": await median_ms(lambda: store.daily_usage(account, since)),
        }
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tasks", type=int, default=20_000)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            results["sqlite"] = await measure(url, args.tasks)
    if args.db in ("postgres", "both"):
        name = f"facelens_console_bench_{uuid.uuid4().hex[:8]}"
        await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            results["postgres"] = await measure(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", args.tasks)
        finally:
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"{args.tasks} tasks per account, two accounts; median ms of 20 calls")
    for db, row in results.items():
        print(db, "  ".join(f"{name}: {ms:.1f}" for name, ms in row.items()))


if __name__ == "__main__":
    asyncio.run(main())
