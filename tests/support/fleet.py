"""Real facelens processes for multi-process tests: API nodes and workers on one database.

    fleet = Fleet(database_url, env, api_ports, image_url, receiver, logs)
    fleet.cli("db", "upgrade")
    fleet.apis = [fleet.spawn("api0", "serve", "--no-worker", port=port)]
    fleet.workers = [fleet.spawn("worker0", "worker")]
    wait_healthy(fleet)
    ...
    stop_all(fleet.apis + fleet.workers)

Each process is `python -m facelens …` in its own session with `FACELENS_*` settings
from `fleet_env`, its output in `<logs>/<name>.log` (`log_tails()` for failure
messages). `check_books` holds the end-of-run assertions every fault test shares:
exactly one delivered start and complete callback per task, each task finished once,
credits charged == tasks - refunds, ledger sum == balance.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
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

DEV_IMAGES = Path(__file__).resolve().parents[2] / ".." / "shared" / "eval" / "widerface-dev"
START_DEADLINE_S = 90.0


def run_async(coro: Any) -> Any:
    """Run a coroutine on a fresh event loop (these tests are synchronous)."""
    return asyncio.run(coro)


async def _query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url, poolclass=NullPool, connect_args=_connect_args(url))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())
    finally:
        await engine.dispose()


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 10} if url.startswith("postgresql") else {}


def query(url: str, sql: str, **params: Any) -> list[Any]:
    return list(run_async(_query(url, sql, **params)))


def fleet_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of every process: this one's minus any FACELENS_* setting, plus
    the database, loopback URLs allowed, fast polling and retries, one detect thread,
    and `settings` (lower-case names without the prefix: lease_seconds="3")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELENS_")}
    env.update(
        {
            "FACELENS_DATABASE_URL": database_url,
            "FACELENS_ALLOW_PRIVATE_URLS": "true",
            "FACELENS_POLL_INTERVAL": "0.1",
            "FACELENS_RETRY_SCHEDULE": "1,1,1,1",
            "FACELENS_DETECT_THREADS": "1",
            "FACELENS_DATA_DIR": str(data_dir),
        }
    )
    env.update({f"FACELENS_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class Fleet:
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

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

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


def wait_healthy(fleet: Fleet) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    for port, proc in zip(fleet.api_ports, fleet.apis, strict=True):
        while True:
            assert proc.poll() is None, f"API on {port} exited\n{fleet.log_tails()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"API on {port} not up\n{fleet.log_tails()}"
            time.sleep(0.2)


PG_URL = os.environ.get("FACELENS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _pg_admin(statement: str) -> None:
    engine = create_async_engine(
        PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"timeout": 5}
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def pg_fleet(
    name_prefix: str,
    logs: Path,
    media: tuple[str, Reply],
    apis: int,
    workers: int,
    **settings: str,
) -> Iterator[Fleet]:
    """A started fleet on a PostgreSQL database of its own: `media` (path, reply) served
    on loopback as the fleet's image URL, a callback receiver that answers 200, `apis`
    API-only nodes and `workers` workers with `settings`. Skips when the server is down
    (fails under CI); stops every process and drops the database afterwards."""
    try:
        run_async(_pg_admin("SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"{name_prefix}_{uuid.uuid4().hex[:12]}"
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    path, reply = media
    run_async(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    try:
        with HttpServer({path: reply}) as host, HttpServer(default=Reply(200)) as receiver:
            env = fleet_env(url, logs / "data", **settings)
            ports = [free_port() for _ in range(apis)]
            running = Fleet(url, env, ports, host.url(path), receiver, logs)
            try:
                running.cli("db", "upgrade")
                running.apis = [
                    running.spawn(f"api{i}", "serve", "--no-worker", port=port)
                    for i, port in enumerate(ports)
                ]
                running.workers = [running.spawn(f"worker{i}", "worker") for i in range(workers)]
                wait_healthy(running)
                yield running
            finally:
                stop_all(running.apis + running.workers)
    finally:
        run_async(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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


def task_body(fleet: Fleet, callback_path: str, count: int, first: int) -> dict[str, Any]:
    return {
        "aigc_type": "face_detect",
        "callback_url": fleet.receiver.url(callback_path),
        "task_list": [
            {
                "additional_params": {"target_image_url": fleet.image_url},
                "callback_params": {"n": first + i},
            }
            for i in range(count)
        ],
    }


def account_of(fleet: Fleet, key: str) -> tuple[int, int]:
    response = httpx.get(
        f"http://127.0.0.1:{fleet.api_ports[0]}/api/account",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    data = response.json()["data"]
    return int(data["account_id"]), int(data["credits"])


def completed_callbacks(fleet: Fleet, callback_path: str) -> int:
    """Complete callbacks (process status 2) the receiver got on `callback_path`."""
    return sum(
        1
        for request in fleet.receiver.requests_to(callback_path)
        if request.headers["webhook-id"].endswith("_2")
    )


def wait_all_delivered(
    fleet: Fleet, account_id: int, task_ids: list[int], callback_path: str, deadline: float
) -> None:
    """Until every task's start and complete callback reached the receiver and every
    delivery row of the account is settled (time.monotonic() `deadline`)."""
    expected = {f"msg_{tid}_{status}" for tid in task_ids for status in (1, 2)}
    while True:
        ids = {r.headers["webhook-id"] for r in fleet.receiver.requests_to(callback_path)}
        settled = query(
            fleet.database_url,
            "SELECT count(*) FROM deliveries d JOIN tasks t ON t.id = d.task_id "
            "WHERE t.account_id = :a AND d.status <> 'pending'",
            a=account_id,
        )[0][0]
        if ids >= expected and settled == 2 * len(task_ids):
            return
        assert time.monotonic() < deadline, (
            f"{len(expected - ids)} callbacks missing, {settled} deliveries settled\n"
            f"{fleet.log_tails()}"
        )
        time.sleep(0.25)


@dataclass(frozen=True)
class Books:
    duplicates: dict[str, int]
    """webhook-id -> times received, for callbacks received more than once."""
    refunds: int
    reclaimed: int
    """Tasks claimed more than once (attempts > 1)."""


def check_books(
    fleet: Fleet,
    account_id: int,
    task_ids: list[int],
    callback_path: str,
    opening: int,
    max_duplicates: int = 0,
) -> Books:
    """The end-of-run assertions, once `wait_all_delivered` returned.

    Callbacks: exactly the expected webhook ids; at most `max_duplicates` of them
    received twice (at-least-once: a process killed between a 200 and recording it),
    never three times, a duplicate always with the same body; a task's complete
    callback never before its start. Store: one delivered start and complete row per
    task, both HTTP 200; every task succeeded once; one refund at most per task;
    ledger sum == balance; credits charged == tasks - refunds.
    """
    requests = fleet.receiver.requests_to(callback_path)
    expected = {f"msg_{tid}_{status}" for tid in task_ids for status in (1, 2)}
    ids_seen = Counter(r.headers["webhook-id"] for r in requests)
    assert set(ids_seen) == expected
    duplicates = {msg_id: n for msg_id, n in ids_seen.items() if n > 1}
    assert len(duplicates) <= max_duplicates and max(ids_seen.values()) <= 2, duplicates
    # A POST cut off by a kill arrives truncated (fewer bytes than its Content-Length):
    # that is the network's doing, not a second body; compare only whole requests.
    bodies: dict[str, set[bytes]] = {}
    for r in requests:
        if len(r.body) == int(r.headers.get("content-length", len(r.body))):
            bodies.setdefault(r.headers["webhook-id"], set()).add(r.body)
    assert all(len(b) == 1 for b in bodies.values()), {
        k: [b[:120] for b in v] for k, v in bodies.items() if len(v) > 1
    }
    first_seen: dict[str, float] = {}
    for r in requests:
        first_seen.setdefault(r.headers["webhook-id"], r.time)
    assert all(first_seen[f"msg_{t}_1"] <= first_seen[f"msg_{t}_2"] for t in task_ids)

    rows = query(
        fleet.database_url,
        "SELECT d.task_id, d.process_status, d.status, d.last_http_status FROM deliveries d "
        "JOIN tasks t ON t.id = d.task_id WHERE t.account_id = :a",
        a=account_id,
    )
    assert Counter((row[0], row[1]) for row in rows) == {
        (t, s): 1 for t in task_ids for s in (1, 2)
    }
    assert {(row[2], row[3]) for row in rows} == {("delivered", 200)}

    statuses = Counter(
        row[0]
        for row in query(
            fleet.database_url, "SELECT status FROM tasks WHERE account_id = :a", a=account_id
        )
    )
    assert statuses == {"succeeded": len(task_ids)}, statuses
    refunds = query(
        fleet.database_url,
        "SELECT task_id, count(*) FROM ledger WHERE account_id = :a AND reason = 'refund' "
        "GROUP BY task_id",
        a=account_id,
    )
    assert all(count == 1 for _, count in refunds)
    [(ledger_sum, balance)] = query(
        fleet.database_url,
        "SELECT (SELECT coalesce(sum(delta), 0) FROM ledger WHERE account_id = :a), "
        "(SELECT credits FROM accounts WHERE id = :a)",
        a=account_id,
    )
    assert ledger_sum == balance
    assert opening - balance == len(task_ids) - len(refunds)
    reclaimed = query(
        fleet.database_url,
        "SELECT count(*) FROM tasks WHERE account_id = :a AND attempts > 1",
        a=account_id,
    )[0][0]
    return Books(duplicates=duplicates, refunds=len(refunds), reclaimed=int(reclaimed))
