"""How much the queue gauges cost: `SqlStore.queue_stats()` on a million tasks.

    .venv/bin/python bench/queue_stats.py [--tasks 1000000] [--queued 10000] [--runs 50]

Every facelens process reads `queue_stats()` (queued/running counts, the oldest queued
task, pending callbacks) at most once a second, when it is scraped. This measures one
read on a fresh PostgreSQL database (created from template0, migrated, dropped at the
end) holding `--tasks` tasks in two shapes:

* steady: `--queued` tasks queued, 50 running, the rest finished with their two
  delivered callbacks each (a service that keeps up, with history);
* backlog: every task queued (the worst case: the counts walk the whole queue).

Rows are made by INSERT … SELECT generate_series, then VACUUM ANALYZE (as autovacuum
would have by then). Prints p50/p95/max milliseconds over `--runs` reads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import open_store

PG_URL = os.environ.get("FACELENS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

_ACCOUNT = """
INSERT INTO accounts (id, name, credits, webhook_secret, created_at_ms)
VALUES (1, 'bench', 0, 'whsec_bench', 0)
"""

_TASKS = """
INSERT INTO tasks (creation_id, account_id, image_url, callback_url, callback_params,
                   options, status, attempts, created_at_ms, started_at_ms, ended_at_ms,
                   error_code, error_info)
SELECT md5(g::text), 1, 'https://img.example/' || g || '.jpg', 'https://cb.example/cb',
       '{}', '{}',
       CASE WHEN g > CAST(:finished AS BIGINT) + CAST(:running AS BIGINT) THEN 'queued'
            WHEN g > CAST(:finished AS BIGINT) THEN 'running' ELSE 'succeeded' END,
       CASE WHEN g > CAST(:finished AS BIGINT) + CAST(:running AS BIGINT) THEN 0 ELSE 1 END,
       1700000000000 + g, NULL, NULL, '', ''
FROM generate_series(1, CAST(:total AS BIGINT)) AS g
"""

_DELIVERIES = """
INSERT INTO deliveries (task_id, process_status, body, status, attempts, last_error,
                        created_at_ms)
SELECT t.id, p, '{}', 'delivered', 1, '', t.created_at_ms
FROM tasks t CROSS JOIN (VALUES (1), (2)) AS ps(p)
WHERE t.status = 'succeeded'
"""


async def _admin(statement: str) -> None:
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def _fill(url: str, total: int, finished: int, running: int) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("TRUNCATE deliveries, tasks RESTART IDENTITY CASCADE"))
            if not (await conn.execute(sa.text("SELECT count(*) FROM accounts"))).scalar():
                await conn.execute(sa.text(_ACCOUNT))
            params = {"total": total, "finished": finished, "running": running}
            await conn.execute(sa.text(_TASKS), params)
            await conn.execute(sa.text(_DELIVERIES))
    finally:
        await engine.dispose()
    vacuum = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with vacuum.connect() as conn:
            await conn.execute(sa.text("VACUUM ANALYZE"))
    finally:
        await vacuum.dispose()


async def _explain(url: str) -> None:
    """EXPLAIN ANALYZE of the three statements (which index each uses)."""
    from facelens.adapters.store import operations

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            for name in ("_COUNTS", "_OLDEST", "_PENDING"):
                statement = getattr(operations, name)
                sql = statement.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
                plan = await conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))
                print(f"  {name}:")
                for (line,) in plan:
                    print(f"    {line}")
    finally:
        await engine.dispose()


async def _measure(url: str, runs: int) -> tuple[list[float], object]:
    store = await open_store(url)
    try:
        stats = await store.queue_stats()  # warm the pool and the cache
        took = []
        for _ in range(runs):
            started = time.perf_counter()
            stats = await store.queue_stats()
            took.append((time.perf_counter() - started) * 1000)
        return took, stats
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    args = parser.parse_args()
    name = f"facelens_bench_qs_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url)
        shapes = (
            ("steady", args.tasks - args.queued - 50, 50),
            ("backlog", 0, 0),
        )
        for shape, finished, running in shapes:
            started = time.perf_counter()
            await _fill(url, args.tasks, finished, running)
            filled = time.perf_counter() - started
            took, stats = await _measure(url, args.runs)
            took.sort()
            p95 = took[int(0.95 * (len(took) - 1))]
            print(
                f"{shape:8s} {args.tasks:,} tasks (filled in {filled:.0f} s): {stats}\n"
                f"         queue_stats p50 {statistics.median(took):.2f} ms, "
                f"p95 {p95:.2f} ms, max {took[-1]:.2f} ms over {args.runs} reads",
                flush=True,
            )
            if args.explain:
                await _explain(url)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
