"""Multi-node operation on PostgreSQL with real processes.

A fresh database (created from template0, migrated with `facelens db upgrade`), two
`facelens serve --no-worker` API processes and three `facelens worker` processes, a
loopback image server holding one small real photo and a loopback webhook receiver
that answers 200. Everything stays on 127.0.0.1.

* `test_killed_worker_loses_nothing`: FAULT_TASKS tasks (default 1,000, the issue's
  size: about 70 s on 2 cores since the worker batches its claims and finishes;
  FACELENS_FAULT_TASKS=200 for a quicker run)
  submitted by several clients across both API processes; one worker is killed with
  SIGKILL in the middle. Every task still ends with exactly one start and one complete
  callback, each recorded with HTTP 200; no task is finished twice; credits charged ==
  tasks submitted - refunds; the ledger sums to the balance.
* `test_racing_submissions_never_overdraw`: balance 10, 20 clients racing one task each
  across both API processes: exactly 10 accepted, 10 refused with 100040, balance 0.

Stopping PostgreSQL under the cluster is NOT tested here: the server is shared with
other test runs on the same machine, and stopping it would break them. The outage test
(test_pg_outage.py) runs its own private server instead. The process, image server and
bookkeeping helpers live in tests/support/fleet.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.fleet import (
    Fleet,
    account_of,
    check_books,
    completed_callbacks,
    pg_fleet,
    query,
    small_jpeg,
    submit,
    task_body,
    wait_all_delivered,
)
from tests.support.servers import Reply

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FAULT_TASKS = int(os.environ.get("FACELENS_FAULT_TASKS", "1000"))
"""Tasks in the kill -9 test (the issue's 1,000 by default)."""

LEASE_SECONDS = 3
FAULT_DEADLINE_S = 60.0 + FAULT_TASKS * 0.4
"""Generous: about 30 ms of detection per task on 2 shared cores, plus lease expiry."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    logs = tmp_path_factory.mktemp("multinode-logs")
    image = ("/face.jpg", Reply(200, {"Content-Type": "image/jpeg"}, small_jpeg()))
    with pg_fleet(
        "facelens_multinode", logs, image, apis=2, workers=3, lease_seconds=str(LEASE_SECONDS)
    ) as running:
        yield running


# ------------------------------------------------------------------ tests


def test_racing_submissions_never_overdraw(cluster: Fleet) -> None:
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


def test_killed_worker_loses_nothing(cluster: Fleet) -> None:
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

    # Kill one worker (SIGKILL: no drain, leases and claimed deliveries left behind)
    # once about a third of the tasks are complete.
    deadline = time.monotonic() + FAULT_DEADLINE_S
    victim = cluster.workers[0]
    while completed_callbacks(cluster, callback_path) < FAULT_TASKS // 3:
        assert time.monotonic() < deadline, f"too slow before the kill\n{cluster.log_tails()}"
        assert victim.poll() is None, f"worker died on its own\n{cluster.log_tails()}"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    wait_all_delivered(cluster, account_id, task_ids, callback_path, deadline)
    # At-least-once: only a delivery the killed process had sent but not yet recorded
    # may arrive twice (its dispatcher holds at most FACELENS_DISPATCHER_CONCURRENCY,
    # 16, at once), and then with the very same body.
    books = check_books(cluster, account_id, task_ids, callback_path, opening, max_duplicates=16)
    print(
        f"{books.reclaimed} tasks re-claimed after the kill; "
        f"{len(books.duplicates)} duplicate callbacks"
    )
