"""Graceful SIGTERM of `facelens worker`, as a real process.

A SQLite database file (migrated in-process), one account and QUEUED tasks written
through the store, a loopback image server whose every reply waits IMAGE_DELAY_S
before its status line (so tasks are in flight for a while), a loopback webhook
receiver answering 200, and `facelens worker` with FACELENS_WORKER_CONCURRENCY=2 as a
subprocess. SIGTERM is sent once both slots are busy (the image server has seen two
downloads):

* `test_sigterm_finishes_in_flight_tasks`: the grace period (FACELENS_STOP_GRACE_SECONDS,
  30 s) outlasts the downloads: no third download starts, both in-flight tasks succeed
  and their start and complete callbacks are delivered before the process exits 0;
  the other tasks stay queued, untouched.
* `test_sigterm_releases_what_the_grace_period_cuts`: a 0.5 s grace against 60 s
  downloads: the process exits 0 within a few seconds, the two tasks it held are
  queued again (attempts back to 0, no outcome, no refund, no complete callback), and a
  second worker started afterwards (images now fast) finishes every task, each with
  exactly one start and one complete callback.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facelens.adapters.store.migrate import upgrade
from facelens.adapters.store.sql_store import open_store
from facelens.core.domain import DetectOptions, NewTask
from tests.support.fleet import fleet_env, query, small_jpeg
from tests.support.servers import HttpServer, Reply

pytestmark = pytest.mark.slow

TASKS = 5
CONCURRENCY = 2
START_DEADLINE_S = 90.0
"""Process start and model load on a busy 2-core machine."""
IMAGE_DELAY_S = 2.0


@dataclass
class Setup:
    database_url: str
    env: dict[str, str]
    images: HttpServer
    receiver: HttpServer
    logs: Path
    account_id: int
    task_ids: list[int]

    def spawn(self, name: str, **settings: str) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        env.update({f"FACELENS_{k.upper()}": v for k, v in settings.items()})
        env["ORT_DISABLE_TELEMETRY"] = "1"
        env["XDG_CACHE_HOME"] = str(self.logs / f"cache-{name}")
        with (self.logs / f"{name}.log").open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "facelens", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def tasks(self) -> dict[int, tuple[str, int, Any]]:
        """id -> (status, attempts, worker_id)."""
        rows = query(
            self.database_url,
            "SELECT id, status, attempts, worker_id FROM tasks WHERE account_id = :a",
            a=self.account_id,
        )
        return {int(r[0]): (str(r[1]), int(r[2]), r[3]) for r in rows}

    def callbacks(self) -> Counter[str]:
        return Counter(r.headers["webhook-id"] for r in self.receiver.requests)


async def _prepare(url: str, callback_url: str, image_url: str) -> tuple[int, list[int]]:
    await upgrade(url)
    store = await open_store(url)
    try:
        now = int(time.time() * 1000)
        account = await store.create_account("acme", TASKS, f"whsec_{uuid.uuid4().hex}", now)
        tasks = [
            NewTask(image_url=image_url, callback_params={"n": n}, options=DetectOptions())
            for n in range(TASKS)
        ]
        ids = await store.submit(account.id, uuid.uuid4().hex, callback_url, tasks, now)
        return account.id, ids
    finally:
        await store.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'facelens.db'}"
    image = Reply(200, {"Content-Type": "image/jpeg"}, small_jpeg(), delay=IMAGE_DELAY_S)
    logs = tmp_path / "logs"
    logs.mkdir()
    with HttpServer({"/face.jpg": image}) as images, HttpServer(default=Reply(200)) as receiver:
        account_id, ids = asyncio.run(_prepare(url, receiver.url("/cb"), images.url("/face.jpg")))
        env = fleet_env(
            url, tmp_path / "data", worker_concurrency=str(CONCURRENCY), lease_seconds="30"
        )
        yield Setup(url, env, images, receiver, logs, account_id, ids)


def sigterm_when_busy(setup: Setup, worker: subprocess.Popen[bytes], name: str) -> float:
    """Wait until both slots are downloading, send SIGTERM; returns when it was sent."""
    try:
        setup.images.wait_for_requests(CONCURRENCY, timeout=START_DEADLINE_S)
    except TimeoutError:
        pytest.fail(f"the worker never got busy\n{setup.log(name)[-3000:]}")
    assert worker.poll() is None, setup.log(name)[-3000:]
    worker.send_signal(signal.SIGTERM)
    return time.monotonic()


def wait_exit(worker: subprocess.Popen[bytes], within: float, log: str) -> int:
    try:
        return worker.wait(timeout=within)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=10)
        pytest.fail(f"worker still running {within}s after SIGTERM\n{log[-3000:]}")


def test_sigterm_finishes_in_flight_tasks(setup: Setup) -> None:
    worker = setup.spawn("worker")
    try:
        sent = sigterm_when_busy(setup, worker, "worker")
        code = wait_exit(worker, IMAGE_DELAY_S + 20, setup.log("worker"))
        elapsed = time.monotonic() - sent
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    log = setup.log("worker")
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]

    # No claim after the signal: only the two downloads that were under way happened.
    assert len(setup.images.requests) == CONCURRENCY
    tasks = setup.tasks()
    done = sorted(tid for tid, (status, _, _) in tasks.items() if status == "succeeded")
    assert len(done) == CONCURRENCY, tasks
    rest = {tid: row for tid, row in tasks.items() if tid not in done}
    assert all(row == ("queued", 0, None) for row in rest.values()), rest
    # Their callbacks went out before the exit: nothing finished is left unreported.
    assert setup.callbacks() == {f"msg_{t}_{s}": 1 for t in done for s in (1, 2)}, (
        setup.callbacks(),
        log[-3000:],
    )
    print(f"SIGTERM -> exit 0 in {elapsed:.1f}s with {CONCURRENCY} tasks finished")


def test_sigterm_releases_what_the_grace_period_cuts(setup: Setup) -> None:
    slow = Reply(200, {"Content-Type": "image/jpeg"}, small_jpeg(), delay=60)
    setup.images.route("/face.jpg", slow)
    grace = 0.5
    first = setup.spawn("worker0", stop_grace_seconds=str(grace))
    try:
        sent = sigterm_when_busy(setup, first, "worker0")
        code = wait_exit(first, grace + 10, setup.log("worker0"))
        elapsed = time.monotonic() - sent
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
    log = setup.log("worker0")
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "released 2 unfinished tasks" in log, log[-3000:]

    # Everything is queued again, as if never claimed: no outcome, no refund.
    assert setup.tasks() == {tid: ("queued", 0, None) for tid in setup.task_ids}
    [(refunds, ledger_sum, balance)] = query(
        setup.database_url,
        "SELECT (SELECT count(*) FROM ledger WHERE account_id = :a AND reason = 'refund'), "
        "(SELECT sum(delta) FROM ledger WHERE account_id = :a), "
        "(SELECT credits FROM accounts WHERE id = :a)",
        a=setup.account_id,
    )
    assert (refunds, ledger_sum, balance) == (0, 0, 0)
    assert not any(msg.endswith("_2") for msg in setup.callbacks()), setup.callbacks()

    # A new worker (images fast now) finishes them all, each reported exactly once.
    setup.images.route("/face.jpg", Reply(200, {"Content-Type": "image/jpeg"}, small_jpeg()))
    second = setup.spawn("worker1")
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        expected = {f"msg_{t}_{s}": 1 for t in setup.task_ids for s in (1, 2)}
        while setup.callbacks() != expected:
            assert time.monotonic() < deadline, (setup.callbacks(), setup.log("worker1")[-3000:])
            assert max(setup.callbacks().values(), default=0) <= 1, setup.callbacks()
            assert second.poll() is None, setup.log("worker1")[-3000:]
            time.sleep(0.1)
        second.send_signal(signal.SIGTERM)
        assert wait_exit(second, 20, setup.log("worker1")) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=10)
    assert {row[0] for row in setup.tasks().values()} == {"succeeded"}
    print(f"SIGTERM with {grace}s grace -> exit 0 in {elapsed:.1f}s, 2 tasks released")
