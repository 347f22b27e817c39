"""What an account does for itself: page through its tasks, have a complete callback
sent again, read its usage per day and its webhook secret, manage its own API keys.

Every method takes the authenticated account and reaches only its rows: the store
filters on the account id in SQL, so another account's id reads as not found.
"""

from __future__ import annotations

from collections.abc import Callable

from facelens.application.keys import PREFIX_LENGTH, NewKey, new_api_key
from facelens.application.ports import Clock, Store
from facelens.core.domain import Account, ApiKeyInfo
from facelens.core.errors import InvalidParameter, NotFound
from facelens.core.self_service import DAY_MS, DayUsage, Redelivery, TaskFilter, TaskPage

MAX_PAGE = 100
MAX_DAYS = 90


class SelfService:
    def __init__(
        self, store: Store, clock: Clock, on_redelivery: Callable[[], None] = lambda: None
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_redelivery = on_redelivery
        """Wakes this process's dispatcher, so a redelivery goes out at once."""

    async def list_tasks(self, account: Account, which: TaskFilter, limit: int) -> TaskPage:
        """Newest first (keyset by id: pages stay stable while new tasks arrive)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidParameter("limit", f"must be 1..{MAX_PAGE}")
        views = await self._store.list_tasks(account.id, which, limit + 1)
        more = len(views) > limit
        page = views[:limit]
        return TaskPage(page, page[-1].id if more else None)

    async def redeliver(self, account: Account, task_id: int) -> None:
        """Schedule the task's complete callback again: a new delivery of the same bytes
        (same `webhook-id`, so receivers deduplicate), retried on the usual schedule. At
        most one is pending per task."""
        outcome = await self._store.redeliver(account.id, task_id, self._clock.now_ms())
        if outcome is Redelivery.NOT_FOUND:
            raise NotFound(f"task {task_id}")
        if outcome is Redelivery.NOT_FINISHED:
            raise InvalidParameter("task_id", f"task {task_id} has no complete callback yet")
        if outcome is Redelivery.PENDING:
            raise InvalidParameter(
                "task_id", f"the complete callback of task {task_id} is still being delivered"
            )
        self._on_redelivery()

    async def daily_usage(self, account: Account, days: int) -> list[DayUsage]:
        """The last `days` UTC days, today last, every day present (zeros when idle)."""
        if not 1 <= days <= MAX_DAYS:
            raise InvalidParameter("days", f"must be 1..{MAX_DAYS}")
        today = self._clock.now_ms() // DAY_MS
        first = today - days + 1
        found = {row.day: row for row in await self._store.daily_usage(account.id, first * DAY_MS)}
        return [found.get(day, DayUsage(day)) for day in range(first, today + 1)]

    async def keys(self, account: Account) -> list[ApiKeyInfo]:
        return await self._store.list_keys(account.id)

    async def create_key(self, account: Account) -> tuple[NewKey, ApiKeyInfo]:
        """A new key for the account; the caller shows `NewKey.key` once."""
        new = new_api_key()
        info = await self._store.add_key(account.id, new.prefix, new.key_hash, self._clock.now_ms())
        return new, info

    async def revoke_key(self, account: Account, prefix: str, key_in_use: str) -> None:
        """Revoke one of the account's live keys by prefix. The key making the request
        may revoke itself, but not when it is the account's last live key: that would
        lock the account out of the API and the console."""
        live = [key for key in await self._store.list_keys(account.id) if key.revoked_at_ms is None]
        if not any(key.prefix == prefix for key in live):
            raise NotFound(f"live key {prefix}")
        if prefix == key_in_use[:PREFIX_LENGTH] and len(live) == 1:
            raise InvalidParameter(
                "prefix",
                "this is the key in use and the account's last live key: create another first",
            )
        if not await self._store.revoke_account_key(account.id, prefix, self._clock.now_ms()):
            raise NotFound(f"live key {prefix}")
