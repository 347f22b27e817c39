"""Queue benchmark: task claims per second and submit-to-start latency.

    .venv/bin/python bench/queue.py [--db sqlite|postgres|both] [--workers 1,2,4]
                                    [--tasks N] [--concurrency C] [--poll S]
                                    [--no-notify]

No model and no network: every task goes through the real `Worker` loop and the real
`SqlStore`, with an `ImagePipeline` built from a no-op fetcher, decoder and detector
(no faces, at once). So this measures the queue, not detection.

For each database and each worker-process count it runs three phases on a fresh
database (PostgreSQL: a database it creates from template0, migrates and drops;
SQLite: a temp file):

* throughput: N tasks are queued first, then the worker processes start together;
  claims/s = N / (last finish - first claim), from the tasks' own timestamps. Claims
  and finishes are batched by the worker (see application/worker.py). "cpu ms/task"
  is the CPU the worker processes and their PostgreSQL backends used in this phase,
  per task: what the queue costs, whatever else the machine is doing.
* loaded latency: tasks submitted one per transaction at `--rate` per second while
  the workers run; submit-to-start = started_at - created_at, p50/p99.
* idle latency: one task at a time, at random moments, to idle workers. On
  PostgreSQL the submission NOTIFYs and each worker process LISTENs, as
  `bootstrap.open_services` wires them (`--no-notify`: polling only, every `--poll` seconds).

Worker processes are separate OS processes (multiprocessing, spawn), like
`facelens worker` nodes; in-process wake-ups cannot cross them, exactly as in a
multi-node deployment.

Measured on this 2-core machine (other test runs going on; numbers and load in the
README, "Running on several machines"): PostgreSQL 860-1,600 claims/s with 1, 2 or 4
worker processes over three runs at load 1-3 (the best of each run 1,050-1,600), at
0.6-2.1 ms CPU per task; idle submit-to-start p50 4-7 ms with LISTEN/NOTIFY against
~200 ms (p99 ~480 ms) polling every 0.5 s. Before batching: 270-560 claims/s.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder is sys.path[0] and "queue" would shadow the
# standard library module that asyncio and multiprocessing import.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))  # tests.support.scratch_db

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import multiprocessing as mp  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing.synchronize import Event as MpEvent  # noqa: E402

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from tests.support.scratch_db import ScratchDatabase  # noqa: E402

from facelens.adapters.store.pg_notify import NotifyListener  # noqa: E402
from facelens.adapters.store.sql_store import SqlStore, open_store  # noqa: E402
from facelens.adapters.store.tables import tasks as tasks_table  # noqa: E402
from facelens.adapters.store.tasks import TASKS_CHANNEL  # noqa: E402
from facelens.application.clock import SystemClock  # noqa: E402
from facelens.application.pipeline import ImagePipeline  # noqa: E402
from facelens.application.ports import FetchedImage  # noqa: E402
from facelens.application.worker import Worker, WorkerConfig  # noqa: E402
from facelens.core.domain import DecodedImage, DetectOptions, Face, NewTask  # noqa: E402

TINY = np.zeros((1, 1, 3), dtype=np.uint8)


class NoFetch:
    async def fetch(self, url: str) -> FetchedImage:
        return FetchedImage(data=b"x", content_type="image/jpeg", final_url=url)


class NoDecode:
    def decode(
        self, data: bytes, content_type: str = "", min_face_size: int | None = None
    ) -> DecodedImage:
        return DecodedImage(pixels=TINY, width=1, height=1, format="JPEG")


class NoDetect:
    name = "noop"

    def detect(self, image: DecodedImage, options: DetectOptions) -> list[Face]:
        return []


# ---------------------------------------------------------------- worker processes


def worker_process(
    url: str, index: int, concurrency: int, poll: float, go: MpEvent, notify: bool
) -> None:
    """One worker node: the real Worker loop until SIGTERM."""
    asyncio.run(_worker_main(url, index, concurrency, poll, go, notify))


async def _worker_main(
    url: str, index: int, concurrency: int, poll: float, go: MpEvent, notify: bool
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    store = await open_store(url, pre_ping=False)  # as open_services does for workers
    try:
        await store.ping()
        await asyncio.to_thread(go.wait)
        worker = Worker(
            store,
            ImagePipeline(NoFetch(), NoDecode(), NoDetect()),
            SystemClock(),
            WorkerConfig(
                worker_id=f"bench-{index}@{os.getpid()}",
                concurrency=concurrency,
                poll_interval_s=poll,
                stop_grace_s=5.0,
            ),
        )
        parts = [worker.run(stop)]
        if notify and url.startswith("postgresql"):  # as bootstrap.open_services wires it
            parts.append(NotifyListener(url, {TASKS_CHANNEL: worker.wake}).run(stop))
        await asyncio.gather(*parts)
    finally:
        await store.close()


# ---------------------------------------------------------------- databases


# ---------------------------------------------------------------- phases


@dataclass
class Result:
    db: str
    workers: int
    tasks: int
    claims_per_s: float
    loaded_rate: float
    loaded_p50_ms: float
    loaded_p99_ms: float
    idle_p50_ms: float
    idle_p99_ms: float
    cpu_ms_per_task: float
    """CPU (user + system) of the worker processes and their PostgreSQL backends during
    the throughput phase, per task: what the queue costs whatever else runs."""


def _new_task(n: int) -> NewTask:
    return NewTask(
        image_url=f"http://img.invalid/{n}.jpg", callback_params={"n": n}, options=DetectOptions()
    )


async def _submit(store: SqlStore, account_id: int, count: int, chunk: int = 100) -> list[int]:
    ids: list[int] = []
    for start in range(0, count, chunk):
        batch = [_new_task(n) for n in range(start, min(count, start + chunk))]
        ids += await store.submit(
            account_id, uuid.uuid4().hex, "http://cb.invalid/", batch, SystemClock().now_ms()
        )
    return ids


async def _rows(store: SqlStore, ids: Sequence[int]) -> list[sa.Row[tuple[int, int, int, int]]]:
    t = tasks_table
    async with store.engine.connect() as conn:
        result = await conn.execute(
            sa.select(t.c.created_at_ms, t.c.started_at_ms, t.c.ended_at_ms, t.c.attempts).where(
                t.c.id.in_(list(ids))
            )
        )
        return list(result.all())  # type: ignore[arg-type]


async def _wait_done(store: SqlStore, ids: Sequence[int], deadline_s: float) -> None:
    """Poll (cheaply: a range count, every 0.1 s) until every task in `ids` ended."""
    t = tasks_table
    low, high = min(ids), max(ids)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        async with store.engine.connect() as conn:
            left = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.id.between(low, high), t.c.ended_at_ms.is_(None))
            )
        if not left:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"tasks not finished within {deadline_s} s")


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_one(
    kind: str,
    workers: int,
    tasks: int,
    concurrency: int,
    poll: float,
    rate: float,
    idle_n: int,
    notify: bool = True,
) -> Result:
    db = ScratchDatabase(kind, "facelens_bench")
    url = await db.create()
    procs: list[mp.process.BaseProcess] = []
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    store = await open_store(url, notify=notify)
    try:
        account = await store.create_account("bench", 10_000_000, "whsec_bench", 0)
        # 1. throughput: queue first, then start every worker at once
        ids = await _submit(store, account.id, tasks)
        for index in range(workers):
            proc = ctx.Process(
                target=worker_process, args=(url, index, concurrency, poll, go, notify), daemon=True
            )
            proc.start()
            procs.append(proc)
        await asyncio.sleep(0.5)  # let them import, connect and wait on `go`
        cpu_pids = [proc.pid for proc in procs if proc.pid is not None]
        cpu_before = _cpu_seconds(cpu_pids, db.name)
        go.set()
        await _wait_done(store, ids, deadline_s=max(120.0, tasks / 50))
        cpu_ms_per_task = (_cpu_seconds(cpu_pids, db.name) - cpu_before) * 1000 / tasks
        rows = await _rows(store, ids)
        first = min(r.started_at_ms for r in rows)
        last = max(r.ended_at_ms for r in rows)
        claims_per_s = len(rows) / max((last - first) / 1000, 1e-3)
        redone = sum(1 for r in rows if r.attempts != 1)
        if redone:
            print(f"  note: {redone} tasks claimed more than once", file=sys.stderr)

        # 2. loaded latency: single-task submissions at `rate` per second
        loaded: list[int] = []
        period = 1.0 / rate
        start = time.monotonic()
        count = int(rate * 3)
        for n in range(count):
            delay = start + n * period - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            loaded += await _submit(store, account.id, 1)
        achieved = count / (time.monotonic() - start)
        await _wait_done(store, loaded, deadline_s=60)
        lat = [float(r.started_at_ms - r.created_at_ms) for r in await _rows(store, loaded)]

        # 3. idle wake-up: one task at a time, at random phases of the poll cycle
        idle_lat: list[float] = []
        for _ in range(idle_n):
            await asyncio.sleep(poll * 2 + random.random() * poll)
            one = await _submit(store, account.id, 1)
            await _wait_done(store, one, deadline_s=30)
            idle_lat += [float(r.started_at_ms - r.created_at_ms) for r in await _rows(store, one)]
        return Result(
            kind,
            workers,
            tasks,
            claims_per_s,
            achieved,
            _pct(lat, 0.5),
            _pct(lat, 0.99),
            _pct(idle_lat, 0.5),
            _pct(idle_lat, 0.99),
            cpu_ms_per_task,
        )
    finally:
        go.set()
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        await store.close()
        await db.drop()


def _cpu_seconds(pids: Sequence[int], database: str) -> float:
    """CPU seconds used so far by `pids` and by the PostgreSQL backends connected to
    `database` (found by their process title), from /proc; NaN where there is none."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        wanted = set(pids)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in wanted:
                with contextlib.suppress(OSError):
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        title = f.read()
                    if title.startswith(b"postgres: ") and database.encode() in title:
                        wanted.add(int(entry))
        total = 0
        for pid in wanted:
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks
    except OSError:
        return float("nan")


def _load() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "load: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, e.g. 1,2,4")
    parser.add_argument("--tasks", type=int, default=3000, help="tasks in the throughput phase")
    parser.add_argument("--concurrency", type=int, default=4, help="tasks in flight per worker")
    parser.add_argument("--poll", type=float, default=0.5, help="idle poll interval, seconds")
    parser.add_argument("--rate", type=float, default=100.0, help="loaded-latency submits/s")
    parser.add_argument("--idle", type=int, default=20, help="idle wake-up samples")
    parser.add_argument(
        "--no-notify",
        action="store_true",
        help="PostgreSQL: no NOTIFY on submit and no LISTEN in workers (polling only)",
    )
    args = parser.parse_args(argv)
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    print(f"before: {_load()}  (cpus: {os.cpu_count()})")
    results: list[Result] = []
    for kind in kinds:
        for workers in counts:
            result = asyncio.run(
                run_one(
                    kind,
                    workers,
                    args.tasks,
                    args.concurrency,
                    args.poll,
                    args.rate,
                    args.idle,
                    not args.no_notify,
                )
            )
            results.append(result)
            print(f"  done {kind} x{workers}: {result.claims_per_s:.0f} claims/s", flush=True)
    print(f"after:  {_load()}")
    print(
        f"\n{'polling only (no LISTEN/NOTIFY), ' if args.no_notify else ''}"
        f"concurrency {args.concurrency}/worker, poll {args.poll} s, "
        f"loaded phase {args.rate:g} single-task submits/s for 3 s, {args.idle} idle samples\n"
    )
    header = (
        f"{'db':<9}{'workers':>8}{'tasks':>7}{'claims/s':>10}"
        f"{'load/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'idle p50':>10}{'idle p99':>10}"
        f"{'cpu ms/task':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.db:<9}{r.workers:>8}{r.tasks:>7}{r.claims_per_s:>10.0f}"
            f"{r.loaded_rate:>8.0f}{r.loaded_p50_ms:>8.0f}{r.loaded_p99_ms:>8.0f}"
            f"{r.idle_p50_ms:>10.0f}{r.idle_p99_ms:>10.0f}{r.cpu_ms_per_task:>13.2f}"
        )


if __name__ == "__main__":
    main()
