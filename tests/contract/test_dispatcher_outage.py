"""The dispatcher when the database goes away between sending a callback and recording
the attempt: it retries the record, then says so in an ERROR line naming the task and
the delivery, and the unrecorded delivery is sent again once its lease expires.

Real parts: a SQLite store file, the real `SafeHttp` sender, a loopback receiver. The
receiver, while answering the callback, takes SQLite's exclusive lock from another
connection, so every write of the store fails with SQLITE_BUSY (StoreUnavailable)
after its busy timeout.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable

import pytest
from sqlalchemy.engine import make_url

from facelens.adapters.http import SafeHttp
from facelens.adapters.store.sql_store import open_store
from facelens.application.clock import SystemClock
from facelens.application.dispatcher import Dispatcher, DispatcherConfig
from facelens.core.callbacks import start_body
from facelens.core.domain import DeliveryStatus
from facelens.core.netpolicy import AddressPolicy
from tests.support.servers import HttpServer, RecordedRequest, Reply

from .conftest import new_account, new_task

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
DEADLINE_S = 10.0
LEASE_MS = 60_000


async def until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@SQLITE_ONLY
async def test_an_attempt_that_cannot_be_recorded_is_logged_and_sent_again(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="facelens.dispatcher")
    store = await open_store(database_url, busy_timeout_ms=20)
    locker = sqlite3.connect(
        str(make_url(database_url).database), isolation_level=None, check_same_thread=False
    )

    def lock_then_200(_request: RecordedRequest) -> Reply:
        locker.execute("BEGIN EXCLUSIVE")
        return Reply(200)

    clock = SystemClock()
    try:
        with HttpServer({"/cb": lock_then_200}) as hook:
            account = await new_account(store)
            (task_id,) = await store.submit(
                account.id, "c1", hook.url("/cb"), [new_task()], clock.now_ms()
            )
            await store.claim_tasks("w1", 1, LEASE_MS, clock.now_ms(), start_body)
            config = DispatcherConfig(
                "d1", lease_ms=LEASE_MS, poll_interval_s=60.0, record_retry_delays_s=(0.01, 0.01)
            )
            async with SafeHttp(AddressPolicy(allow_private=True)) as sender:
                dispatcher = Dispatcher(store, sender, clock, config)
                stop = asyncio.Event()
                running = asyncio.create_task(dispatcher.run(stop))
                try:
                    await until(
                        lambda: any(r.levelno == logging.ERROR for r in caplog.records),
                        "the dispatcher to give up recording",
                    )
                finally:
                    locker.execute("ROLLBACK")
                    stop.set()
                    await asyncio.wait_for(running, DEADLINE_S)
            assert len(hook.requests) == 1

        view = await store.get_task(account.id, task_id)
        assert view is not None
        (start,) = view.deliveries
        assert start.status is DeliveryStatus.PENDING
        assert start.attempts == 0 and start.history == ()
        # Its lease still runs; once it expires the delivery is due again, unchanged.
        (again,) = await store.claim_deliveries("d2", 10, LEASE_MS, clock.now_ms() + LEASE_MS)
        assert again.task_id == task_id and again.attempts == 0
    finally:
        locker.close()
        await store.close()

    retries = [r for r in caplog.records if "not recorded yet" in r.getMessage()]
    assert len(retries) == 2
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.name == "facelens.dispatcher"
    message = error.getMessage()
    assert f"task {task_id}: callback 1 attempt 1 (delivery {again.id}): not recorded" in message
    assert "sent again" in message
