"""Account administration use cases (CLI and first start)."""

from __future__ import annotations

from dataclasses import dataclass

from facelens.application.keys import PREFIX_LENGTH, new_api_key, new_webhook_secret
from facelens.application.ports import Clock, Store
from facelens.core.domain import Account
from facelens.core.errors import NotFound


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    account: Account
    api_key: str
    """Shown once; only its hash is stored."""


class AccountAdmin:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def create(self, name: str, credits: int) -> CreatedAccount:
        """A new account with a fresh webhook secret and its first API key."""
        if credits < 0:
            raise ValueError("credits must be >= 0")
        account = await self._store.create_account(
            name, credits, new_webhook_secret(), self._clock.now_ms()
        )
        key = await self.create_key(account.id)
        return CreatedAccount(account=account, api_key=key)

    async def create_key(self, account_id: int) -> str:
        if await self._store.get_account(account_id) is None:
            raise NotFound(f"no account {account_id}")
        new = new_api_key()
        await self._store.add_key(account_id, new.prefix, new.key_hash, self._clock.now_ms())
        return new.key

    async def revoke_key(self, key_or_prefix: str) -> bool:
        """Revoke by the full key or its printed prefix."""
        prefix = key_or_prefix[:PREFIX_LENGTH]
        return await self._store.revoke_key(prefix, self._clock.now_ms())

    async def add_credits(self, account_id: int, amount: int) -> int:
        if await self._store.get_account(account_id) is None:
            raise NotFound(f"no account {account_id}")
        return await self._store.add_credits(account_id, amount, "admin", self._clock.now_ms())

    async def ensure_default_account(self, credits: int) -> CreatedAccount | None:
        """On an empty database create the default account; None when accounts exist."""
        if await self._store.count_accounts() > 0:
            return None
        return await self.create("default", credits)
