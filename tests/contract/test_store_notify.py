"""PostgreSQL LISTEN/NOTIFY: a submission committed on one connection wakes a listener
on another, a rolled-back one does not, and the listener survives losing its
connection. Every wait has a deadline; "nothing arrived" is proven by a sentinel
notification sent afterwards (PostgreSQL delivers notifications in commit order)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import sqlalchemy as sa

from facelens.adapters.store.pg_notify import NotifyListener, asyncpg_dsn
from facelens.adapters.store.sql_store import SqlStore, open_store
from facelens.adapters.store.tasks import TASKS_CHANNEL
from facelens.core.errors import InsufficientCredits

from .conftest import new_account, submit_tasks
from .workers import ObservedStore, make_worker, running

POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)

SENTINEL = "facelens_test_sentinel"
DEADLINE_S = 10.0


class Heard:
    """Counts notifications per channel; `wait_for(channel, n)` until n arrived."""

    def __init__(self, *channels: str) -> None:
        self.counts: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self.handlers: Mapping[str, Callable[[], None]] = {
            channel: self._handler(channel) for channel in channels
        }

    def _handler(self, channel: str) -> Callable[[], None]:
        def heard() -> None:
            self.counts[channel] += 1
            self._changed.set()

        return heard

    async def wait_for(self, channel: str, count: int) -> None:
        async def wait() -> None:
            while self.counts[channel] < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), DEADLINE_S)


@contextlib.asynccontextmanager
async def listening(url: str, heard: Heard, **options: float) -> AsyncIterator[NotifyListener]:
    listener = NotifyListener(url, heard.handlers, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await asyncio.wait_for(listener.connected.wait(), DEADLINE_S)
        yield listener
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE_S)


async def notify(store: SqlStore, channel: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(sa.select(sa.func.pg_notify(channel, "")))


async def test_dsn_keeps_credentials_and_drops_sqlalchemy_options() -> None:
    dsn = asyncpg_dsn(
        "postgresql+asyncpg://u:p%40ss@db.example:6543/fl?ssl=require"
        "&prepared_statement_cache_size=0"
    )
    assert dsn == "postgresql://u:p%40ss@db.example:6543/fl?ssl=require"
    with pytest.raises(ValueError):
        asyncpg_dsn("sqlite+aiosqlite:///x.db")


@POSTGRES_ONLY
async def test_a_committed_submission_wakes_a_listener_elsewhere(
    database_url: str, store: SqlStore
) -> None:
    account = await new_account(store, credits=3)
    heard = Heard(TASKS_CHANNEL, SENTINEL)
    async with listening(database_url, heard):
        await heard.wait_for(TASKS_CHANNEL, 1)  # the wake-up after connecting
        await submit_tasks(store, account, 2)
        await heard.wait_for(TASKS_CHANNEL, 2)

        # A submission that fails (and rolls back) notifies nobody.
        with pytest.raises(InsufficientCredits):
            await submit_tasks(store, account, 5)
        await notify(store, SENTINEL)
        await heard.wait_for(SENTINEL, 1)
        assert heard.counts[TASKS_CHANNEL] == 2


@POSTGRES_ONLY
async def test_a_store_without_notify_stays_silent(database_url: str, store: SqlStore) -> None:
    account = await new_account(store, credits=3)
    quiet = await open_store(database_url, notify=False)
    heard = Heard(TASKS_CHANNEL, SENTINEL)
    try:
        async with listening(database_url, heard):
            await heard.wait_for(TASKS_CHANNEL, 1)
            await submit_tasks(quiet, account, 1)
            await notify(store, SENTINEL)
            await heard.wait_for(SENTINEL, 1)
            assert heard.counts[TASKS_CHANNEL] == 1
    finally:
        await quiet.close()


@POSTGRES_ONLY
async def test_the_listener_reconnects_after_losing_its_connection(
    database_url: str, store: SqlStore
) -> None:
    account = await new_account(store, credits=3)
    heard = Heard(TASKS_CHANNEL)
    async with listening(database_url, heard, min_backoff_s=0.05, check_interval_s=0.2):
        await heard.wait_for(TASKS_CHANNEL, 1)
        async with store.engine.begin() as conn:
            killed = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'facelens-listen' "
                    "AND datname = current_database()"
                )
            )
        assert killed == 1
        await heard.wait_for(TASKS_CHANNEL, 2)  # reconnected: it wakes everyone once
        await submit_tasks(store, account, 1)
        await heard.wait_for(TASKS_CHANNEL, 3)


@POSTGRES_ONLY
async def test_an_idle_worker_starts_work_submitted_by_another_process(
    database_url: str, store: SqlStore
) -> None:
    """The wiring of open_services: a worker polling only every 10 minutes, its LISTEN
    connection, and a submission from another pool (as from an API node)."""
    account = await new_account(store, credits=3)
    observed = ObservedStore(database_url)
    worker, _ = make_worker(observed, poll_interval_s=600.0)
    heard = Heard(TASKS_CHANNEL)
    handlers = {TASKS_CHANNEL: lambda: (worker.wake(), heard.handlers[TASKS_CHANNEL]())}
    listener = NotifyListener(database_url, handlers)
    stop = asyncio.Event()
    try:
        async with running(worker):
            listen = asyncio.create_task(listener.run(stop))
            await heard.wait_for(TASKS_CHANNEL, 1)  # connected; its wake-up claimed nothing
            await observed.until(lambda: observed.empty_claims >= 2)
            (task_id,) = await submit_tasks(store, account, 1)
            await observed.until(lambda: task_id in observed.recorded, within_s=DEADLINE_S)
            stop.set()
            await asyncio.wait_for(listen, DEADLINE_S)
    finally:
        stop.set()
        await observed.close()
