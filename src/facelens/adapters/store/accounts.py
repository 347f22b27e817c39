"""Accounts, API keys and credits.

Every balance change is a conditional UPDATE plus a ledger row in the same transaction:

    UPDATE accounts SET credits = credits - :n WHERE id = :id AND credits >= :n

The database checks and debits in one step, so concurrent debits (from any number of
processes) can never overdraw, and the balance always equals the sum of the ledger.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from facelens.adapters.store.base import StoreBase, insert_row, record
from facelens.adapters.store.tables import accounts, api_keys, ledger, tasks
from facelens.core.domain import Account, ApiKeyInfo, TaskStatus, Usage
from facelens.core.errors import InsufficientCredits, NotFound

_AMOUNT = sa.bindparam("amount", type_=sa.BigInteger)

CHARGED = sa.func.coalesce(sa.func.sum(sa.case((ledger.c.delta < 0, -ledger.c.delta), else_=0)), 0)
"""Credits debited: every negative ledger entry."""
REFUNDED = sa.func.coalesce(
    sa.func.sum(sa.case((ledger.c.reason == "refund", ledger.c.delta), else_=0)), 0
)
"""Credits given back for tasks that could not be analysed (reason "refund")."""

_DEBIT = (
    sa.update(accounts)
    .where(accounts.c.id == sa.bindparam("account"), accounts.c.credits >= _AMOUNT)
    .values(credits=accounts.c.credits - _AMOUNT)
    .returning(accounts.c.credits)
)
"""The conditional debit of the module docstring."""

_CREDIT = (
    sa.update(accounts)
    .where(accounts.c.id == sa.bindparam("account"))
    .values(credits=accounts.c.credits + _AMOUNT)
    .returning(accounts.c.credits)
)

_INSERT_LEDGER = sa.insert(ledger)


async def debit(conn: AsyncConnection, account_id: int, amount: int) -> int:
    """Take `amount` credits if the balance allows it; the new balance.

    Raises InsufficientCredits (or NotFound) having written nothing. The caller writes
    the ledger row in the same transaction.
    """
    new_balance = (
        await conn.execute(_DEBIT, {"account": account_id, "amount": amount})
    ).scalar_one_or_none()
    if new_balance is not None:
        return int(new_balance)
    balance = (
        await conn.execute(sa.select(accounts.c.credits).where(accounts.c.id == account_id))
    ).scalar_one_or_none()
    if balance is None:
        raise NotFound(f"no account {account_id}")
    raise InsufficientCredits(amount, int(balance))


async def credit(conn: AsyncConnection, account_id: int, amount: int) -> int:
    """Give `amount` (>= 0) credits back; the new balance. Raises NotFound."""
    new_balance = (
        await conn.execute(_CREDIT, {"account": account_id, "amount": amount})
    ).scalar_one_or_none()
    if new_balance is None:
        raise NotFound(f"no account {account_id}")
    return int(new_balance)


def ledger_row(
    account_id: int,
    delta: int,
    reason: str,
    now_ms: int,
    *,
    task_id: int | None = None,
    creation_id: str | None = None,
) -> dict[str, Any]:
    """One ledger row's values, for `write_ledger`."""
    return {
        "account_id": account_id,
        "delta": delta,
        "reason": reason,
        "task_id": task_id,
        "creation_id": creation_id,
        "created_at_ms": now_ms,
    }


async def write_ledger(conn: AsyncConnection, *rows: dict[str, Any]) -> None:
    """Insert `ledger_row`s in the caller's transaction, several with one executemany
    (a batch of refunds)."""
    if rows:
        await conn.execute(_INSERT_LEDGER, list(rows))


class AccountStore(StoreBase):
    """The accounts, keys and credits half of the `Store` protocol."""

    async def create_account(
        self, name: str, credits: int, webhook_secret: str, now_ms: int
    ) -> Account:
        """Insert the account and, when credits > 0, its opening ledger row."""
        if credits < 0:
            raise ValueError("an account cannot open with negative credits")
        async with self._write() as conn:
            row = await insert_row(
                conn,
                accounts,
                name=name,
                credits=credits,
                webhook_secret=webhook_secret,
                created_at_ms=now_ms,
            )
            if credits > 0:
                await write_ledger(conn, ledger_row(row.id, credits, "initial credits", now_ms))
        return record(Account, row)

    async def get_account(self, account_id: int) -> Account | None:
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(accounts).where(accounts.c.id == account_id))
            ).first()
        return None if row is None else record(Account, row)

    async def list_accounts(self) -> list[Account]:
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(accounts).order_by(accounts.c.id))).all()
        return [record(Account, row) for row in rows]

    async def count_accounts(self) -> int:
        async with self._read() as conn:
            count = (
                await conn.execute(sa.select(sa.func.count()).select_from(accounts))
            ).scalar_one()
        return int(count)

    async def add_key(self, account_id: int, prefix: str, key_hash: str, now_ms: int) -> ApiKeyInfo:
        async with self._write() as conn:
            row = await insert_row(
                conn,
                api_keys,
                account_id=account_id,
                prefix=prefix,
                key_hash=key_hash,
                created_at_ms=now_ms,
            )
        return record(ApiKeyInfo, row)

    async def revoke_key(self, prefix: str, now_ms: int) -> bool:
        """Revoke the live key(s) stored under this prefix; False when there is none."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at_ms.is_(None))
                .values(revoked_at_ms=now_ms)
            )
        return result.rowcount > 0

    async def revoke_account_key(self, account_id: int, prefix: str, now_ms: int) -> bool:
        """Revoke the account's live key(s) under this prefix; another account's key
        with the same prefix is untouched. False when there is none."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(api_keys)
                .where(
                    api_keys.c.account_id == account_id,
                    api_keys.c.prefix == prefix,
                    api_keys.c.revoked_at_ms.is_(None),
                )
                .values(revoked_at_ms=now_ms)
            )
        return result.rowcount > 0

    async def list_keys(self, account_id: int) -> list[ApiKeyInfo]:
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    sa.select(api_keys)
                    .where(api_keys.c.account_id == account_id)
                    .order_by(api_keys.c.id)
                )
            ).all()
        return [record(ApiKeyInfo, row) for row in rows]

    async def account_for_key(self, key_hash: str) -> Account | None:
        """The account of a live (not revoked) key, by the key's sha256 hex."""
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(accounts)
                    .join(api_keys, api_keys.c.account_id == accounts.c.id)
                    .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at_ms.is_(None))
                )
            ).first()
        return None if row is None else record(Account, row)

    async def add_credits(self, account_id: int, delta: int, reason: str, now_ms: int) -> int:
        """Ledger entry + balance change; a negative `delta` is a conditional debit."""
        async with self._write() as conn:
            if delta < 0:
                balance = await debit(conn, account_id, -delta)
            else:
                balance = await credit(conn, account_id, delta)
            await write_ledger(conn, ledger_row(account_id, delta, reason, now_ms))
        return balance

    async def charge(self, account_id: int, amount: int, reason: str, now_ms: int) -> int:
        """Debit `amount` if the balance allows it (else InsufficientCredits)."""
        if amount < 0:
            raise ValueError("charge amount must be >= 0")
        async with self._write() as conn:
            balance = await debit(conn, account_id, amount)
            await write_ledger(conn, ledger_row(account_id, -amount, reason, now_ms))
        return balance

    async def ledger_sum(self, account_id: int) -> int:
        async with self._read() as conn:
            total = (
                await conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(ledger.c.delta), 0)).where(
                        ledger.c.account_id == account_id
                    )
                )
            ).scalar_one()
        return int(total)

    async def usage(self, account_id: int) -> Usage:
        """Tasks by status (every status present, zero when none) and, from the ledger,
        credits debited (all negative entries) and refunded (entries with reason
        "refund")."""
        charged, refunded = CHARGED, REFUNDED
        async with self._read() as conn:
            counts = (
                await conn.execute(
                    sa.select(tasks.c.status, sa.func.count())
                    .where(tasks.c.account_id == account_id)
                    .group_by(tasks.c.status)
                )
            ).all()
            money = (
                await conn.execute(
                    sa.select(charged, refunded).where(ledger.c.account_id == account_id)
                )
            ).one()
        by_status = {status.value: 0 for status in TaskStatus}
        by_status.update({str(status): int(count) for status, count in counts})
        return Usage(
            tasks_by_status=by_status,
            credits_charged=int(money[0]),
            credits_refunded=int(money[1]),
        )
