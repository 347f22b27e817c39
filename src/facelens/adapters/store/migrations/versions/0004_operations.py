"""Operations: worker heartbeats and per-task stage timings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

`workers`: one row per running worker process, upserted by its heartbeat, deleted
when it stops gracefully. `tasks.fetch_ms/decode_ms/detect_ms`: the analysis stages of
the run that produced the outcome (null where a stage did not run); queued and total
time follow from the existing timestamps. Nullable columns without a default: an
instant, metadata-only change on PostgreSQL whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAGES = ("fetch_ms", "decode_ms", "detect_ms")


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("tasks_done", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    for column in _STAGES:
        op.add_column("tasks", sa.Column(column, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in _STAGES:
            batch.drop_column(column)
    op.drop_table("workers")
