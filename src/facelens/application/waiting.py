"""Waiting in the worker, finisher and dispatcher loops: on events with a deadline, and
between the tries of a store write while the database is unreachable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from facelens.core.errors import StoreUnavailable
from facelens.core.retry import STORE_RETRY_DELAYS_S

T = TypeVar("T")


async def wait_first(seconds: float, *events: asyncio.Event) -> None:
    """Return when any event is set or after `seconds`, whichever comes first."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def retry_unavailable(
    write: Callable[[], Awaitable[T]],
    log: logging.Logger,
    what: str,
    delays_s: Sequence[float] = STORE_RETRY_DELAYS_S,
) -> T:
    """`write()`, tried again after each of `delays_s` while it raises `StoreUnavailable`
    (each failure logged as a warning naming `what`). A database restart or a failover
    takes seconds, and the work behind such a write (analysed tasks, a callback that was
    sent) should not be redone for that. Raises the last `StoreUnavailable` once the
    delays are used up; other errors go through at once."""
    for delay in delays_s:
        try:
            return await write()
        except StoreUnavailable as exc:
            log.warning("%s: not recorded yet, retry in %.1f s (%s)", what, delay, exc)
            await asyncio.sleep(delay)
    return await write()
