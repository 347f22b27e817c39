"""Retention benchmark: claim latency while a large purge runs.

    .venv/bin/python -P bench/purge.py [--db postgres|sqlite|both] [--old 100000]
                                       [--batch 200] [--pause 0.1] [--seconds 5]

On a fresh database (PostgreSQL: created from template0, migrated, dropped after;
SQLite: a temp file) it inserts `--old` finished tasks that ended 60 days ago, each
with its two delivered callbacks and one attempt per callback (bulk SQL), and a queue
of tasks to claim. Then one claimer (the real `claim_tasks` + `finish_tasks` of the
store, 8 tasks per claim, like a busy worker) runs twice:

* without purge, for `--seconds`;
* while another process purges every old task through the store's retention
  (`purge_older_than`, batches of `--batch`, `--pause` seconds between batches: the
  background retention loop's defaults), until it is done.

It prints claim latency p50/p99/max (ms) and claims/s for both, the purge's duration
and rate, and checks that every old task, delivery and attempt is gone while the
queue's tasks and the ledger are untouched.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder is sys.path[0] and bench/queue.py would shadow
# the standard library module that asyncio and multiprocessing import.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # tests.support.scratch_db

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import multiprocessing as mp  # noqa: E402
import queue  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import sqlalchemy as sa  # noqa: E402
from tests.support.scratch_db import ScratchDatabase  # noqa: E402

from facelens.adapters.store.retention import RetentionStore  # noqa: E402
from facelens.adapters.store.sql_store import SqlStore, open_store  # noqa: E402
from facelens.application.clock import SystemClock  # noqa: E402
from facelens.application.ports import TaskFinish  # noqa: E402
from facelens.application.retention import purge_older_than  # noqa: E402
from facelens.core.callbacks import start_body  # noqa: E402
from facelens.core.domain import DetectOptions, NewTask, TaskOutcome  # noqa: E402

DAY_MS = 86_400_000
CLAIM_BATCH = 8


def _series(postgres: bool) -> str:
    if postgres:
        return "SELECT generate_series(1, :n) AS g"
    return (
        "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
        "SELECT g FROM s"
    )


async def insert_old(store: SqlStore, account_id: int, count: int, ended_ms: int) -> None:
    """`count` finished tasks that ended at `ended_ms`, two delivered callbacks each,
    one attempt per callback: what a busy service leaves behind."""
    postgres = store.engine.dialect.name == "postgresql"
    concat = "'http://img.invalid/' || g"
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO tasks (creation_id, account_id, image_url, callback_url, "
                "callback_params, options, status, attempts, created_at_ms, started_at_ms, "
                "ended_at_ms, result, error_code, error_info) "
                f"SELECT 'old', :account, {concat}, 'http://cb.invalid/', '{{}}', '{{}}', "
                "'succeeded', 1, :t, :t, :t, '{\"faces\": []}', '', '' "
                f"FROM ({_series(postgres)}) AS series"
            ),
            {"account": account_id, "n": count, "t": ended_ms},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO deliveries (task_id, process_status, body, status, attempts, "
                "next_attempt_at, last_error, created_at_ms) "
                "SELECT t.id, p.ps, '{}', 'delivered', 1, NULL, '', :t "
                "FROM tasks AS t CROSS JOIN (SELECT 1 AS ps UNION ALL SELECT 2) AS p "
                "WHERE t.creation_id = 'old'"
            ),
            {"t": ended_ms},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO delivery_attempts (delivery_id, attempted_at_ms, http_status, "
                "error, duration_ms) SELECT id, :t, 200, '', 5 FROM deliveries"
            ),
            {"t": ended_ms},
        )
    if postgres:
        async with store.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE"))


async def queue_tasks(store: SqlStore, account_id: int, count: int) -> None:
    now = SystemClock().now_ms()
    for start in range(0, count, 1000):
        batch = [
            NewTask(f"http://img.invalid/q{n}.jpg", {"n": n}, DetectOptions())
            for n in range(start, min(count, start + 1000))
        ]
        await store.submit(account_id, uuid.uuid4().hex, "http://cb.invalid/", batch, now)


async def claim_loop(store: SqlStore, until: asyncio.Event | float) -> list[float]:
    """Claim and finish at once, CLAIM_BATCH at a time; each claim's latency (ms)."""
    clock = SystemClock()
    latencies: list[float] = []
    outcome = TaskOutcome(result_code=1, image_width=1, image_height=1)
    while True:
        if isinstance(until, float) and time.perf_counter() >= until:
            return latencies
        if isinstance(until, asyncio.Event) and until.is_set():
            return latencies
        started = time.perf_counter()
        claimed = await store.claim_tasks("bench", CLAIM_BATCH, 60_000, clock.now_ms(), start_body)
        latencies.append((time.perf_counter() - started) * 1000)
        if not claimed:
            raise RuntimeError("the queue ran dry: raise the queued task count")
        finishes = [TaskFinish(t.id, outcome, "{}", False) for t in claimed]
        await store.finish_tasks("bench", finishes, clock.now_ms())


class BenchStore(SqlStore, RetentionStore):
    """The store with its retention part, sharing one engine (and, on SQLite, the one
    in-process write lock, as `serve` does)."""


async def _purge_in_process(
    store: BenchStore, batch: int, pause: float
) -> tuple[list[float], int, float]:
    """SQLite: `serve` runs retention in its own process, queued on the same write lock
    as the worker's claims (another process would only compete on the busy timeout)."""
    stop = asyncio.Event()

    async def purge() -> tuple[int, float]:
        started = time.perf_counter()
        try:
            purged = await purge_older_than(store, SystemClock(), 30, batch=batch, pause_s=pause)
        finally:
            stop.set()
        return purged, time.perf_counter() - started

    during, (purged, purge_s) = await asyncio.gather(claim_loop(store, stop), purge())
    return during, purged, purge_s


async def _purge_in_other_process(
    store: BenchStore, url: str, batch: int, pause: float
) -> tuple[list[float], int, float]:
    """PostgreSQL: the purge runs in another process (another node's retention loop or
    `facelens db purge`), the claims here."""
    ctx = mp.get_context("spawn")
    done: mp.Queue[tuple[int, float]] = ctx.Queue()
    proc = ctx.Process(target=purge_process, args=(url, batch, pause, done), daemon=True)
    stop = asyncio.Event()
    proc.start()

    async def watch() -> tuple[int, float]:
        try:
            while True:
                with contextlib.suppress(queue.Empty):
                    return await asyncio.to_thread(done.get, True, 0.5)
                if not proc.is_alive():
                    raise RuntimeError(f"the purge process died (exit {proc.exitcode})")
        finally:
            stop.set()

    try:
        during, (purged, purge_s) = await asyncio.gather(claim_loop(store, stop), watch())
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=30)
    return during, purged, purge_s


def purge_process(url: str, batch: int, pause: float, done: mp.Queue[tuple[int, float]]) -> None:
    async def main() -> tuple[int, float]:
        store = await open_store(url, pre_ping=False)
        try:
            started = time.perf_counter()
            purged = await purge_older_than(
                RetentionStore(store.engine), SystemClock(), 30, batch=batch, pause_s=pause
            )
            return purged, time.perf_counter() - started
        finally:
            await store.close()

    done.put(asyncio.run(main()))


@dataclass
class Result:
    db: str
    old: int
    base: list[float]
    during: list[float]
    purged: int
    purge_s: float
    base_s: float


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
    )


async def run_one(
    kind: str, old: int, batch: int, pause: float, seconds: float, queued: int
) -> Result:
    db = ScratchDatabase(kind, "facelens_purge")
    url = await db.create()
    opened = await open_store(url, pre_ping=False)
    store = BenchStore(opened.engine)
    try:
        account = await store.create_account("bench", 10_000_000, "whsec_bench", 0)
        now = SystemClock().now_ms()
        await insert_old(store, account.id, old, now - 60 * DAY_MS)
        await queue_tasks(store, account.id, queued)
        await claim_loop(store, time.perf_counter() + 1.0)  # warm-up
        started = time.perf_counter()
        base = await claim_loop(store, started + seconds)
        base_s = time.perf_counter() - started
        if kind == "sqlite":
            during, purged, purge_s = await _purge_in_process(store, batch, pause)
        else:
            during, purged, purge_s = await _purge_in_other_process(store, url, batch, pause)
        async with store.engine.connect() as conn:
            left = await conn.scalar(
                sa.text("SELECT count(*) FROM tasks WHERE creation_id = 'old'")
            )
            deliveries = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM deliveries WHERE task_id NOT IN (SELECT id FROM tasks)"
                )
            )
            balance = await conn.scalar(
                sa.text(f"SELECT credits FROM accounts WHERE id = {account.id}")
            )
            ledger = await conn.scalar(
                sa.text(f"SELECT sum(delta) FROM ledger WHERE account_id = {account.id}")
            )
        if left or deliveries or balance != ledger:
            print(
                f"  CHECK FAILED: {left} old tasks left, {deliveries} orphan deliveries, "
                f"balance {balance} vs ledger {ledger}",
                file=sys.stderr,
            )
        return Result(kind, old, base, during, purged, purge_s, base_s)
    finally:
        await store.close()
        await db.drop()


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="postgres")
    parser.add_argument("--old", type=int, default=100_000, help="old finished tasks to purge")
    parser.add_argument("--batch", type=int, default=200, help="tasks per purge transaction")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between batches")
    parser.add_argument("--seconds", type=float, default=5.0, help="baseline claiming time")
    parser.add_argument("--queued", type=int, default=150_000, help="tasks queued to claim")
    args = parser.parse_args(argv)
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    print(f"before: {_load()}  (cpus: {os.cpu_count()})")
    results = [
        asyncio.run(run_one(k, args.old, args.batch, args.pause, args.seconds, args.queued))
        for k in kinds
    ]
    print(f"after:  {_load()}\n")
    print(f"batch {args.batch}, pause {args.pause} s, {CLAIM_BATCH} tasks per claim\n")
    header = (
        f"{'db':<9}{'phase':<16}{'claims':>8}{'claims/s':>10}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'purged':>9}{'purge s':>9}{'tasks/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        for phase, lat, secs in (
            ("no purge", r.base, r.base_s),
            ("during purge", r.during, r.purge_s),
        ):
            extra = (
                f"{r.purged:>9}{r.purge_s:>9.1f}{r.purged / r.purge_s:>9.0f}"
                if lat is r.during
                else ""
            )
            print(
                f"{r.db:<9}{phase:<16}{len(lat):>8}{len(lat) / secs:>10.0f}{_pct(lat, 0.5):>8.1f}"
                f"{_pct(lat, 0.99):>8.1f}{max(lat):>8.1f}{extra}"
            )


if __name__ == "__main__":
    main()
