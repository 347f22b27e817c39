"""Waiting on events with a deadline, for the worker and dispatcher loops."""

from __future__ import annotations

import asyncio


async def wait_first(seconds: float, *events: asyncio.Event) -> None:
    """Return when any event is set or after `seconds`, whichever comes first."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
