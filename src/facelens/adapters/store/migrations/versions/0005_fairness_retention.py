"""Operations: fair claims across accounts and retention.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

* `tasks.fair_tag` and `accounts.fair_tag`: the fair-queueing tags (see
  adapters/store/fairness.py). Claims scan `ix_tasks_fair_claimable`
  (fair_tag, id) over queued and running tasks, as they scanned `ix_tasks_claimable`
  (id) before. Existing rows get 0: tasks already queued keep their place ahead of
  anything submitted after the upgrade.
* `ix_tasks_ended_at_ms` over finished tasks: retention picks the tasks that ended
  longest ago (partial, so claims add nothing to it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUE = sa.text("status IN ('queued', 'running')")
_FINISHED = sa.text("status IN ('succeeded', 'failed')")


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("fair_tag", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column("tasks", sa.Column("fair_tag", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index(
        "ix_tasks_fair_claimable",
        "tasks",
        ["fair_tag", "id"],
        postgresql_where=_QUEUE,
        sqlite_where=_QUEUE,
    )
    op.create_index(
        op.f("ix_tasks_ended_at_ms"),
        "tasks",
        ["ended_at_ms"],
        postgresql_where=_FINISHED,
        sqlite_where=_FINISHED,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_ended_at_ms"), table_name="tasks")
    op.drop_index("ix_tasks_fair_claimable", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("fair_tag")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("fair_tag")
