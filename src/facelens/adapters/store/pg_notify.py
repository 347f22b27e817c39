"""PostgreSQL LISTEN: wakes this process's idle worker the moment a submission commits,
whichever machine submitted it. The one module that uses asyncpg directly.

A submission runs `pg_notify('facelens_tasks', '')` in its own transaction
(`tasks.py`); PostgreSQL delivers it at commit to every connection that LISTENs on the
channel. Each worker process keeps ONE dedicated connection for that, outside the
SQLAlchemy pool: a pooled connection would be handed to other work, and LISTEN is
per session.

Notifications are only a shortcut. The worker keeps polling at its poll interval
whatever happens here, so work is never missed: tasks whose lease expired (a dead
worker's) send no notification at all, and while this connection is down (database
restart, network cut) polling is all there is. The listener then reconnects with
exponential back-off, and after each (re)connect it wakes everyone once, since work
may have arrived while nobody was listening.

A connection can die silently (a cut network sends no FIN), so the listener also runs
a `SELECT 1` every `check_interval_s`, bounded by a timeout, and reconnects when it
fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from facelens.adapters.store.engine import normalize_url
from facelens.application.waiting import wait_first
from facelens.core.retry import Backoff

log = logging.getLogger("facelens.listen")

_SQLALCHEMY_ONLY_PARAMS = frozenset(
    {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"}
)
"""URL query keys meant for SQLAlchemy's asyncpg dialect; asyncpg itself would send them
to the server as settings, which rejects them."""

_CONNECTION_TROUBLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def asyncpg_dsn(database_url: str) -> str:
    """A libpq-style DSN for asyncpg from a SQLAlchemy PostgreSQL URL."""
    url = normalize_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("LISTEN/NOTIFY needs a PostgreSQL database URL")
    query = {k: v for k, v in url.query.items() if k not in _SQLALCHEMY_ONLY_PARAMS}
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


class NotifyListener:
    """LISTENs on each channel of `handlers` and calls the channel's handler (which
    must be quick and not raise, e.g. `Worker.wake`) for every notification."""

    def __init__(
        self,
        database_url: str,
        handlers: Mapping[str, Callable[[], None]],
        *,
        connect_timeout_s: float = 5.0,
        check_interval_s: float = 15.0,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._handlers = dict(handlers)
        self._connect_timeout_s = connect_timeout_s
        self._check_interval_s = check_interval_s
        self._backoff = Backoff(min_backoff_s, max_backoff_s)
        self._connected = asyncio.Event()

    @property
    def connected(self) -> asyncio.Event:
        """Set while LISTEN is in place (tests wait on it; it can be cleared again)."""
        return self._connected

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop` is set, reconnecting with back-off when the connection
        fails. Never raises for connection trouble: polling covers the gaps."""
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=self._connect_timeout_s,
                    server_settings={"application_name": "facelens-listen"},
                )
            except _CONNECTION_TROUBLE as exc:
                log.warning("cannot open the LISTEN connection (%s); polling only", _brief(exc))
            else:
                try:
                    await self._listen(conn, stop)
                except _CONNECTION_TROUBLE as exc:
                    log.warning("LISTEN connection failed (%s); polling only", _brief(exc))
                finally:
                    self._connected.clear()
                    await _close(conn)
            if not stop.is_set():
                await wait_first(self._backoff.failed(), stop)

    async def _listen(self, conn: Any, stop: asyncio.Event) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        for channel in self._handlers:
            await conn.add_listener(channel, self._notified)
        self._connected.set()
        self._backoff.succeeded()
        log.info("listening on %s", ", ".join(sorted(self._handlers)))
        for handler in self._handlers.values():  # work may have come while nobody listened
            handler()
        while not stop.is_set():
            await wait_first(self._check_interval_s, stop, lost)
            if lost.is_set():
                raise ConnectionResetError("the server closed the LISTEN connection")
            if not stop.is_set():
                await asyncio.wait_for(conn.execute("SELECT 1"), self._connect_timeout_s)

    def _notified(self, _conn: object, _pid: int, channel: str, _payload: object) -> None:
        handler = self._handlers.get(channel)
        if handler is not None:
            handler()


async def _close(conn: Any) -> None:
    """Close politely if the connection still answers, else drop it."""
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except Exception:
        with contextlib.suppress(Exception):
            conn.terminate()


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
