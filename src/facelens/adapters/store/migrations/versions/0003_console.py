"""Console: task listing index, redelivery.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

* `ix_tasks_account_id_id`: an account's tasks newest first (`GET /api/aigc/tasks`
  walks it backwards from `before_id` and stops at the page size).
* `deliveries.redelivered_at_ms`: when the account last asked for this callback again
  (`POST /api/aigc/task/{id}/redeliver`); null for a callback never redelivered.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_tasks_account_id_id"), "tasks", ["account_id", "id"])
    op.add_column("deliveries", sa.Column("redelivered_at_ms", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("redelivered_at_ms")
    op.drop_index(op.f("ix_tasks_account_id_id"), table_name="tasks")
