"""A PostgreSQL outage in the middle of a run, with real processes.

The shared server on 127.0.0.1:5432 must never be stopped (other test runs use it), so
this test starts its own PostgreSQL cluster (tests/support/pg_cluster.py) on a free
loopback port, migrates it with `facelens db upgrade`, and runs one
`facelens serve --no-worker` and two `facelens worker` processes on it, with a
loopback image server (each image answered after IMAGE_DELAY_S, so tasks are in flight
when the database goes) and a loopback webhook receiver that answers 200.

`test_database_outage_loses_nothing`: FIRST_BATCH tasks are submitted; once some are
complete, PostgreSQL is stopped for OUTAGE_S seconds, either cleanly (`pg_ctl stop -m
fast`: every connection is cut) or as a crash (`-m immediate`: crash recovery on the
next start). While it is down, submit, a task query, the account and /readyz
each answer promptly (well inside the client's 10 s timeout) with HTTP 503, the JSON
envelope code 100099, a Retry-After header and no traceback or driver text; the
workers stay alive and back off (a bounded number of "store unavailable" lines, not
one per poll). PostgreSQL is started again on the same port; the very next submit is
accepted, SECOND_BATCH more tasks go in, and then every task ends with exactly one
start and one complete callback recorded with 200, no duplicate callback, every task
succeeded once, credits charged == tasks - refunds, ledger sum == balance, and both
workers are still the same live processes.

Without the server binaries (initdb, pg_ctl) the test skips, except under CI, where it
fails (like every PostgreSQL test).

`test_api_node_started_during_an_outage`: with no database at all, `serve --no-worker`
still starts and answers 100099; `db upgrade` and `accounts list` print one line and
exit 1.

`test_silent_server_is_unavailable_not_a_hang`: a server that accepts TCP and never
answers is StoreUnavailable after the engine's connect timeout (asyncpg alone would
wait 60 s).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from facelens.adapters.store.engine import DEFAULT_CONNECT_TIMEOUT_S, create_engine
from facelens.adapters.store.sql_store import SqlStore
from facelens.core.errors import StoreUnavailable
from tests.support.fleet import (
    Fleet,
    account_of,
    check_books,
    completed_callbacks,
    fleet_env,
    small_jpeg,
    stop_all,
    submit,
    task_body,
    wait_all_delivered,
    wait_healthy,
)
from tests.support.pg_cluster import PgCluster, cluster_unavailable, private_cluster
from tests.support.servers import HttpServer, Reply, free_port

FIRST_BATCH = 60
SECOND_BATCH = 20
IMAGE_DELAY_S = 0.5
OUTAGE_S = 5.0
CLIENT_TIMEOUT_S = 10.0
PROMPT_S = 5.0
"""An answer during the outage must come within this (the client gives up at 10 s)."""
LEASE_SECONDS = 20
"""Longer than the outage: this test is about reconnecting, not lease expiry (the
kill -9 test covers that). With a lease shorter than the outage, a callback sent just
before the database went away could be sent again by another dispatcher once its lease
lapsed: allowed (at-least-once), but then "no duplicate" could not be asserted."""
DEADLINE_S = 120.0
LEAKS = re.compile(r"Traceback|File \"|sqlalchemy|asyncpg|psycopg|SELECT|INSERT", re.I)


@pytest.fixture
def pg() -> Iterator[PgCluster]:
    reason = cluster_unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a private PostgreSQL: {reason} (CI is set)")
        pytest.skip(f"cannot start a private PostgreSQL: {reason}")
    with private_cluster() as cluster:
        yield cluster


def assert_unavailable(response: httpx.Response, elapsed: float, what: str) -> None:
    assert elapsed < PROMPT_S, f"{what} took {elapsed:.1f}s while the database was down"
    assert response.status_code == 503, (what, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"code", "message", "data"}, body
    assert body["code"] == 100099, (what, body)
    assert response.headers.get("retry-after", "").isdigit(), (what, response.headers)
    assert not LEAKS.search(response.text), (what, response.text)


def probe_while_down(fleet: Fleet, key: str, task_id: int, callback_path: str) -> int:
    """Every API call a client makes, timed, while the database is down: returns how
    many calls were made."""
    base = f"http://127.0.0.1:{fleet.api_ports[0]}"
    auth = {"Authorization": f"Bearer {key}"}
    calls = 0
    with httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT_S) as client:
        requests: list[tuple[str, str, dict[str, object] | None]] = [
            ("submit", "/api/aigc/task/submit", task_body(fleet, callback_path, 1, 10_000)),
            ("query", f"/api/aigc/task/{task_id}", None),
            ("account", "/api/account", None),
        ]
        for what, path, body in requests:
            started = time.monotonic()
            if body is not None:
                response = client.post(path, json=body, headers=auth)
            else:
                response = client.get(path, headers=auth)
            assert_unavailable(response, time.monotonic() - started, what)
            calls += 1
        started = time.monotonic()
        ready = client.get("/readyz")
        assert_unavailable(ready, time.monotonic() - started, "readyz")
        assert ready.json()["data"] == {"database": "unreachable"}
        calls += 1
    return calls


async def test_silent_server_is_unavailable_not_a_hang() -> None:
    """A server that accepts TCP and never answers (overloaded, half-dead, a black hole
    behind a NAT) is StoreUnavailable after the connect timeout, not a minute's hang."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes handshakes; nobody ever answers
        port = listener.getsockname()[1]
        engine = create_engine(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/facelens", connect_timeout_s=0.5
        )
        store = SqlStore(engine)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.ping()
            assert time.monotonic() - started < 5
        finally:
            await store.close()
    assert DEFAULT_CONNECT_TIMEOUT_S <= CLIENT_TIMEOUT_S / 2


@pytest.mark.slow
def test_api_node_started_during_an_outage(tmp_path: Path) -> None:
    """No database at all (a closed port): `facelens serve --no-worker` still comes up
    and answers 100099 (HTTP 503) like a node that was running when the database went
    away; admin commands fail with one line and exit 1, no traceback."""
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/facelens"
    logs = tmp_path / "logs"
    logs.mkdir()
    with HttpServer(default=Reply(200)) as receiver:
        fleet = Fleet(url, fleet_env(url, logs / "data"), [free_port()], "", receiver, logs)
        for args in (["db", "upgrade"], ["accounts", "list"]):
            done = subprocess.run(
                [sys.executable, "-m", "facelens", *args],
                env=fleet.env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            stderr = done.stderr.decode(errors="replace")
            assert done.returncode == 1, stderr
            assert stderr.startswith("facelens: database unavailable:"), stderr
            assert "Traceback" not in stderr, stderr
        fleet.apis = [fleet.spawn("api0", "serve", "--no-worker", port=fleet.api_ports[0])]
        try:
            wait_healthy(fleet)
            fleet.image_url = "http://127.0.0.1:9/face.jpg"
            probe_while_down(fleet, "fl_" + "x" * 40, 1, "/cb")
        finally:
            stop_all(fleet.apis)
    assert "Traceback" not in fleet.log_of("api0"), fleet.log_of("api0")[-3000:]


def store_unavailable_lines(log: str) -> tuple[int, int]:
    """Failed polls of the claim loops: ("worker …: store unavailable" lines,
    "dispatcher: store unavailable" lines). A loop busy with work it holds (retrying
    to record it) does not poll, so either may be 0."""
    worker = len(re.findall(r"facelens\.worker: worker \S+: store unavailable", log))
    dispatcher = len(re.findall(r"facelens\.dispatcher: dispatcher: store unavailable", log))
    return worker, dispatcher


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_database_outage_loses_nothing(pg: PgCluster, tmp_path: Path, mode: str) -> None:
    url = pg.create_database("facelens")
    image = Reply(200, {"Content-Type": "image/jpeg"}, small_jpeg(), delay=IMAGE_DELAY_S)
    logs = tmp_path / "logs"
    logs.mkdir()
    with HttpServer({"/face.jpg": image}) as images, HttpServer(default=Reply(200)) as receiver:
        env = fleet_env(url, logs / "data", lease_seconds=str(LEASE_SECONDS))
        fleet = Fleet(url, env, [free_port()], images.url("/face.jpg"), receiver, logs)
        try:
            fleet.cli("db", "upgrade")
            fleet.apis = [fleet.spawn("api0", "serve", "--no-worker", port=fleet.api_ports[0])]
            fleet.workers = [fleet.spawn(f"worker{i}", "worker") for i in range(2)]
            wait_healthy(fleet)
            run_outage(fleet, pg, mode)
        finally:
            stop_all(fleet.apis + fleet.workers)


def run_outage(fleet: Fleet, pg: PgCluster, mode: str) -> None:
    port = fleet.api_ports[0]
    key = fleet.new_account(credits=FIRST_BATCH + SECOND_BATCH)
    account_id, opening = account_of(fleet, key)
    callback_path = f"/cb/{uuid.uuid4().hex[:8]}"

    def send(first: int, count: int) -> list[int]:
        reply = submit(port, key, task_body(fleet, callback_path, count, first))
        assert reply["code"] == 100000, reply
        return [int(task_id) for task_id in reply["data"]["task_id_list"]]

    with ThreadPoolExecutor(max_workers=3) as pool:
        batches = pool.map(lambda first: send(first, 10), range(0, FIRST_BATCH, 10))
        task_ids = [tid for ids in batches for tid in ids]
    deadline = time.monotonic() + DEADLINE_S

    # Wait for the run to be well under way, then cut the database.
    while completed_callbacks(fleet, callback_path) < 10:
        assert time.monotonic() < deadline, f"too slow before the outage\n{fleet.log_tails()}"
        assert all(w.poll() is None for w in fleet.workers), fleet.log_tails()
        time.sleep(0.05)
    pg.stop(mode)
    down_at = time.monotonic()
    done_before = completed_callbacks(fleet, callback_path)
    assert done_before < FIRST_BATCH, "the run finished before the outage: nothing was tested"

    probes = 0
    while time.monotonic() - down_at < OUTAGE_S:
        probes += probe_while_down(fleet, key, task_ids[-1], callback_path)
        assert all(p.poll() is None for p in fleet.apis + fleet.workers), fleet.log_tails()
        time.sleep(0.2)
    assert probes >= 4
    pg.start()
    up_at = time.monotonic()

    # The very next request is served (dead pooled connections are replaced, not used).
    task_ids += send(FIRST_BATCH, SECOND_BATCH // 2)
    task_ids += send(FIRST_BATCH + SECOND_BATCH // 2, SECOND_BATCH - SECOND_BATCH // 2)
    assert len(set(task_ids)) == FIRST_BATCH + SECOND_BATCH

    wait_all_delivered(fleet, account_id, task_ids, callback_path, deadline)
    books = check_books(fleet, account_id, task_ids, callback_path, opening, max_duplicates=0)

    # The workers lived through it: same processes, they noticed, and they backed off
    # instead of hammering the dead server every poll interval (0.1 s).
    assert all(w.poll() is None for w in fleet.workers), fleet.log_tails()
    outage = up_at - down_at
    spinning = outage / 0.1
    for i in range(len(fleet.workers)):
        log = fleet.log_of(f"worker{i}")
        polls = store_unavailable_lines(log)
        assert sum(polls) + log.count("database unavailable") >= 1, (
            f"worker{i} never noticed the outage\n{log[-3000:]}"
        )
        assert sum(polls) < spinning / 2, polls
        assert "Traceback" not in log, log[-5000:]
    api_log = fleet.log_of("api0")
    assert "Traceback" not in api_log, api_log[-5000:]
    print(
        f"{mode} outage {outage:.1f}s with {done_before}/{FIRST_BATCH} complete callbacks in; "
        f"{probes} API calls answered 100099; {books.reclaimed} tasks re-claimed, "
        f"{books.refunds} refunds"
    )
