"""Multi-node operation on PostgreSQL with real processes.

A fresh database (created from template0, migrated with `facelens db upgrade`), two
`facelens serve --no-worker` API processes and three `facelens worker` processes, a
loopback image server holding one small real photo and a loopback webhook receiver
that answers 200. Everything stays on 127.0.0.1.

* `test_killed_worker_loses_nothing`: FAULT_TASKS tasks (default 200, so the test fits
  in a few minutes on 2 cores; the issue's 1,000 runs with FACELENS_FAULT_TASKS=1000)
  submitted by several clients across both API processes; one worker is killed with
  SIGKILL in the middle. Every task still ends with exactly one start and one complete
  callback, each recorded with HTTP 200; no task is finished twice; credits charged ==
  tasks submitted - refunds; the ledger sums to the balance.
* `test_racing_submissions_never_overdraw`: balance 10, 20 clients racing one task each
  across both API processes: exactly 10 accepted, 10 refused with 100040, balance 0.

Stopping PostgreSQL under the cluster is NOT tested here: the server is shared with
other test runs on the same machine, and stopping it would break them.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.servers import HttpServer, Reply, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FAULT_TASKS = int(os.environ.get("FACELENS_FAULT_TASKS", "200"))
"""Tasks in the kill -9 test; FACELENS_FAULT_TASKS=1000 runs the issue's full size."""

PG_URL = os.environ.get("FACELENS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
DEV_IMAGES = Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "widerface-dev"
LEASE_SECONDS = 3
START_DEADLINE_S = 90.0
FAULT_DEADLINE_S = 60.0 + FAULT_TASKS * 0.4
"""Generous: about 30 ms of detection per task on 2 shared cores, plus lease expiry."""


# ------------------------------------------------------------------ database helpers


def run_async(coro: Any) -> Any:
    """Run a coroutine on a fresh event loop (these tests are synchronous)."""
    return asyncio.run(coro)


async def _admin(statement: str) -> None:
    engine = create_async_engine(
        PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"timeout": 5}
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def _query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())
    finally:
        await engine.dispose()


def query(url: str, sql: str, **params: Any) -> list[Any]:
    return list(run_async(_query(url, sql, **params)))


# ------------------------------------------------------------------ the cluster


@dataclass
class Cluster:
    database_url: str
    env: dict[str, str]
    api_ports: list[int]
    image_url: str
    receiver: HttpServer
    logs: Path
    apis: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "facelens", *args],
            env=self.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        return done.stdout.decode().strip()

    def spawn(self, name: str, *args: str, port: int | None = None) -> subprocess.Popen[bytes]:
        env = dict(self.env)
        # onnxruntime 1.32 keeps a telemetry store in $XDG_CACHE_HOME shared by every
        # process on the machine; model loads were seen to hang on it for minutes when
        # several processes start at once. Off, and a private cache per process.
        env["ORT_DISABLE_TELEMETRY"] = "1"
        env["XDG_CACHE_HOME"] = str(self.logs / f"cache-{name}")
        if port is not None:
            env["FACELENS_PORT"] = str(port)
        log = (self.logs / f"{name}.log").open("wb")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "facelens", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    def new_account(self, credits: int) -> str:
        return self.cli(
            "accounts", "create", f"acct-{uuid.uuid4().hex[:8]}", "--credits", str(credits)
        )

    def log_tails(self) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)


def small_jpeg() -> bytes:
    """One real dev photo, downscaled to about 256 px so detection stays cheap."""
    from PIL import Image

    images = sorted((DEV_IMAGES / "WIDER_val" / "images").glob("*/*.jpg"))
    if not images:
        pytest.skip(f"WIDER FACE dev subset not found at {DEV_IMAGES.resolve()}")
    with Image.open(images[0]) as photo:
        photo = photo.convert("RGB")
        photo.thumbnail((256, 256))
        out = io.BytesIO()
        photo.save(out, format="JPEG", quality=90)
    return out.getvalue()


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL whatever is still there after a few seconds."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_healthy(cluster: Cluster) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    for port, proc in zip(cluster.api_ports, cluster.apis, strict=True):
        while True:
            assert proc.poll() is None, f"API on {port} exited\n{cluster.log_tails()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"API on {port} not up\n{cluster.log_tails()}"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        run_async(_admin("SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"facelens_multinode_{uuid.uuid4().hex[:12]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    image = Reply(200, {"Content-Type": "image/jpeg"}, small_jpeg())
    logs = tmp_path_factory.mktemp("multinode-logs")
    run_async(_admin(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        with HttpServer({"/face.jpg": image}) as images, HttpServer(default=Reply(200)) as receiver:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("FACELENS_")},
                "FACELENS_DATABASE_URL": url,
                "FACELENS_ALLOW_PRIVATE_URLS": "true",
                "FACELENS_POLL_INTERVAL": "0.1",
                "FACELENS_LEASE_SECONDS": str(LEASE_SECONDS),
                "FACELENS_RETRY_SCHEDULE": "1,1,1,1",
                "FACELENS_DETECT_THREADS": "1",
                "FACELENS_DATA_DIR": str(logs / "data"),
            }
            ports = [free_port(), free_port()]
            running = Cluster(url, env, ports, images.url("/face.jpg"), receiver, logs)
            try:
                running.cli("db", "upgrade")
                running.apis = [
                    running.spawn(f"api{i}", "serve", "--no-worker", port=port)
                    for i, port in enumerate(ports)
                ]
                running.workers = [running.spawn(f"worker{i}", "worker") for i in range(3)]
                wait_healthy(running)
                yield running
            finally:
                stop_all(running.apis + running.workers)
    finally:
        run_async(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def submit(port: int, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/aigc/task/submit",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def task_body(cluster: Cluster, callback_path: str, count: int, first: int) -> dict[str, Any]:
    return {
        "aigc_type": "face_detect",
        "callback_url": cluster.receiver.url(callback_path),
        "task_list": [
            {
                "additional_params": {"target_image_url": cluster.image_url},
                "callback_params": {"n": first + i},
            }
            for i in range(count)
        ],
    }


def account_of(cluster: Cluster, key: str) -> tuple[int, int]:
    response = httpx.get(
        f"http://127.0.0.1:{cluster.api_ports[0]}/api/account",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    data = response.json()["data"]
    return int(data["account_id"]), int(data["credits"])


# ------------------------------------------------------------------ tests


def test_racing_submissions_never_overdraw(cluster: Cluster) -> None:
    key = cluster.new_account(credits=10)
    barrier = threading.Barrier(20)

    def one(index: int) -> int:
        barrier.wait(timeout=30)
        port = cluster.api_ports[index % 2]
        return int(submit(port, key, task_body(cluster, "/race", 1, index))["code"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = Counter(pool.map(one, range(20)))

    assert codes == {100000: 10, 100040: 10}, codes
    account_id, balance = account_of(cluster, key)
    assert balance == 0
    [(ledger_sum, credits)] = query(
        cluster.database_url,
        "SELECT (SELECT coalesce(sum(delta), 0) FROM ledger WHERE account_id = :a), "
        "(SELECT credits FROM accounts WHERE id = :a)",
        a=account_id,
    )
    assert ledger_sum == credits == 0
    [(tasks,)] = query(
        cluster.database_url, "SELECT count(*) FROM tasks WHERE account_id = :a", a=account_id
    )
    assert tasks == 10


def test_killed_worker_loses_nothing(cluster: Cluster) -> None:
    key = cluster.new_account(credits=FAULT_TASKS)
    account_id, opening = account_of(cluster, key)
    callback_path = f"/cb/{uuid.uuid4().hex[:8]}"
    per_request = 10
    chunks = [(first, min(per_request, FAULT_TASKS - first)) for first in range(0, FAULT_TASKS, 10)]

    def send(index: int) -> list[int]:
        first, count = chunks[index]
        port = cluster.api_ports[index % 2]
        reply = submit(port, key, task_body(cluster, callback_path, count, first))
        assert reply["code"] == 100000, reply
        return [int(task_id) for task_id in reply["data"]["task_id_list"]]

    with ThreadPoolExecutor(max_workers=6) as pool:
        task_ids = [tid for ids in pool.map(send, range(len(chunks))) for tid in ids]
    assert len(set(task_ids)) == FAULT_TASKS

    def received() -> list[Any]:
        return cluster.receiver.requests_to(callback_path)

    # Kill one worker (SIGKILL: no drain, leases and claimed deliveries left behind)
    # once about a third of the tasks are complete.
    deadline = time.monotonic() + FAULT_DEADLINE_S
    victim = cluster.workers[0]
    while sum(1 for r in received() if r.headers["webhook-id"].endswith("_2")) < FAULT_TASKS // 3:
        assert time.monotonic() < deadline, f"too slow before the kill\n{cluster.log_tails()}"
        assert victim.poll() is None, f"worker died on its own\n{cluster.log_tails()}"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    expected = {f"msg_{tid}_{status}" for tid in task_ids for status in (1, 2)}
    while True:
        ids = {r.headers["webhook-id"] for r in received()}
        settled = query(
            cluster.database_url,
            "SELECT count(*) FROM deliveries d JOIN tasks t ON t.id = d.task_id "
            "WHERE t.account_id = :a AND d.status <> 'pending'",
            a=account_id,
        )[0][0]
        if ids >= expected and settled == 2 * FAULT_TASKS:
            break
        assert time.monotonic() < deadline, (
            f"{len(expected - ids)} callbacks missing, {settled} deliveries settled\n"
            f"{cluster.log_tails()}"
        )
        time.sleep(0.25)

    requests = received()
    ids_seen = Counter(r.headers["webhook-id"] for r in requests)
    assert set(ids_seen) == expected
    # At-least-once: only a delivery the killed process had sent but not yet recorded
    # may arrive twice (its dispatcher holds at most FACELENS_DISPATCHER_CONCURRENCY,
    # 16, at once), and then with the very same body.
    duplicates = {msg_id: n for msg_id, n in ids_seen.items() if n > 1}
    assert len(duplicates) <= 16 and max(ids_seen.values()) <= 2, duplicates
    # A POST cut off by the kill arrives truncated (fewer bytes than its Content-Length):
    # that is the network's doing, not a second body; compare only whole requests.
    bodies: dict[str, set[bytes]] = {}
    for r in requests:
        if len(r.body) == int(r.headers.get("content-length", len(r.body))):
            bodies.setdefault(r.headers["webhook-id"], set()).add(r.body)
    assert all(len(b) == 1 for b in bodies.values()), {
        k: [b[:120] for b in v] for k, v in bodies.items() if len(v) > 1
    }
    # The complete callback never arrives before the start callback of its task.
    first_seen: dict[str, float] = {}
    for r in requests:
        first_seen.setdefault(r.headers["webhook-id"], r.time)
    assert all(first_seen[f"msg_{t}_1"] <= first_seen[f"msg_{t}_2"] for t in task_ids)

    # The store: one delivered start and complete row per task, both 200.
    rows = query(
        cluster.database_url,
        "SELECT d.task_id, d.process_status, d.status, d.last_http_status FROM deliveries d "
        "JOIN tasks t ON t.id = d.task_id WHERE t.account_id = :a",
        a=account_id,
    )
    assert Counter((row[0], row[1]) for row in rows) == {
        (t, s): 1 for t in task_ids for s in (1, 2)
    }
    assert {(row[2], row[3]) for row in rows} == {("delivered", 200)}

    # Every task finished exactly once, and the money adds up.
    statuses = Counter(
        row[0]
        for row in query(
            cluster.database_url, "SELECT status FROM tasks WHERE account_id = :a", a=account_id
        )
    )
    assert statuses == {"succeeded": FAULT_TASKS}, statuses
    refunds = query(
        cluster.database_url,
        "SELECT task_id, count(*) FROM ledger WHERE account_id = :a AND reason = 'refund' "
        "GROUP BY task_id",
        a=account_id,
    )
    assert all(count == 1 for _, count in refunds)
    [(ledger_sum, balance)] = query(
        cluster.database_url,
        "SELECT (SELECT coalesce(sum(delta), 0) FROM ledger WHERE account_id = :a), "
        "(SELECT credits FROM accounts WHERE id = :a)",
        a=account_id,
    )
    assert ledger_sum == balance
    assert opening - balance == FAULT_TASKS - len(refunds)
    reclaimed = query(
        cluster.database_url,
        "SELECT count(*) FROM tasks WHERE account_id = :a AND attempts > 1",
        a=account_id,
    )[0][0]
    print(f"{reclaimed} tasks re-claimed after the kill; {len(duplicates)} duplicate callbacks")
