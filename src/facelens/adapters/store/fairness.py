"""Fair claims across accounts: start-time fair queueing with tags given at submission.

Each task gets a `fair_tag` when it is submitted, and claims take tasks in
(fair_tag, id) order instead of id order. The tags make accounts with queued work
take turns:

    base = the smallest tag among queued tasks (the head of the queue), or, when
           nothing is queued, the largest tag ever given (accounts.fair_tag)
    first tag of a submission of n tasks = max(account's last tag, base) + 1
    its tasks get first .. first + n - 1; the account's last tag becomes first + n - 1

A backlog of 10,000 tasks from account A holds tags t .. t + 9999. When account B then
submits one task, the head of the queue is some h (A's oldest unclaimed task), so B's
task gets h + 1: it is claimed right after A's current head, within the next claim
batch. Two backlogged accounts get interleaved tags (1, 2, 3 … each), so claims
alternate between them: round-robin, one task per account per turn. An account that
was idle does not bank credit for later (its tag is lifted to the head of the queue),
and a large submission does not jump the queue: its tags run past everyone else's.
Within one account the order stays its submission order (tags only grow per account).

Why tags rather than a round-robin cursor read at claim time: the claim stays the
same single index scan as before (`ix_tasks_fair_claimable` is (fair_tag, id) over
queued and running tasks, like `ix_tasks_claimable` over id), so claims/s do not pay
for fairness; the work moves to the submission, which already locks its account's row
for the debit. `base` costs one probe of that index (the head) or, on an empty queue, a
scan of the accounts table (small; only when nothing at all is queued).

Concurrency: the tag UPDATE locks the account's row (as the debit does), so one
account's submissions get disjoint, increasing tags. `base` may be a little stale
under concurrent submissions (another account's tasks just claimed): that only moves
a task a few places, never behind a backlog.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from facelens.adapters.store.tables import QUEUE_STATUSES, accounts, tasks

QUEUED = "queued"


@functools.cache
def _tag_statement(postgres: bool) -> sa.Update:
    """Reserve `n` tags for `account`; returns its new last tag."""
    head = (
        sa.select(tasks.c.fair_tag)
        .where(
            # Both terms: SQLite uses a partial index only when the query repeats its
            # WHERE term literally.
            tasks.c.status.in_([sa.literal_column(f"'{s}'") for s in QUEUE_STATUSES]),
            tasks.c.status == sa.literal_column(f"'{QUEUED}'"),
        )
        .order_by(tasks.c.fair_tag, tasks.c.id)
        .limit(1)
        .scalar_subquery()
    )
    others = accounts.alias("others")
    high_water = sa.select(sa.func.max(others.c.fair_tag)).scalar_subquery()
    base = sa.func.coalesce(head, high_water, 0)
    larger = sa.func.greatest if postgres else sa.func.max  # SQLite's 2-argument max()
    return (
        sa.update(accounts)
        .where(accounts.c.id == sa.bindparam("account"))
        .values(fair_tag=larger(accounts.c.fair_tag, base) + sa.bindparam("n", type_=sa.BigInteger))
        .returning(accounts.c.fair_tag)
    )


async def reserve_tags(conn: AsyncConnection, postgres: bool, account_id: int, n: int) -> int:
    """The first of `n` consecutive fair tags for a submission of `account_id`, in the
    caller's transaction (after its debit, which already locked the account's row)."""
    last: Any = (
        await conn.execute(_tag_statement(postgres), {"account": account_id, "n": n})
    ).scalar_one()
    return int(last) - n + 1
