"""Initial schema: accounts, api_keys, ledger, tasks, deliveries, delivery_attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

A frozen copy of tables.py at the time, with every constraint and index name spelled
out and wrapped in op.f() (final: the naming convention must not rewrite it), so later
edits to tables.py need a new revision, never a silent change here. Times are BIGINT
epoch milliseconds; ids BIGINT (INTEGER on SQLite, where only that auto-increments).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUE = sa.text("status IN ('queued', 'running')")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("webhook_secret", sa.String(200), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("credits >= 0", name=op.f("ck_accounts_credits_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_api_keys_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"])

    op.create_table(
        "ledger",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("task_id", _id(), nullable=True),
        sa.Column("creation_id", sa.String(64), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ledger_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
    )
    op.create_index(op.f("ix_ledger_account_id"), "ledger", ["account_id"])

    op.create_table(
        "tasks",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("creation_id", sa.String(64), nullable=False),
        sa.Column("account_id", _id(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("callback_params", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("ended_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("error_info", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_tasks_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index(
        op.f("ix_tasks_claimable"), "tasks", ["id"], postgresql_where=_QUEUE, sqlite_where=_QUEUE
    )
    op.create_index(op.f("ix_tasks_account_id_creation_id"), "tasks", ["account_id", "creation_id"])
    op.create_index(op.f("ix_tasks_account_id_status"), "tasks", ["account_id", "status"])

    op.create_table(
        "deliveries",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("task_id", _id(), nullable=False),
        sa.Column("process_status", sa.SmallInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("dispatcher_id", sa.String(200), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_deliveries_task_id_tasks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "task_id", "process_status", name=op.f("uq_deliveries_task_id_process_status")
        ),
    )
    op.create_index(
        op.f("ix_deliveries_status_next_attempt_at"), "deliveries", ["status", "next_attempt_at"]
    )

    op.create_table(
        "delivery_attempts",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", _id(), nullable=False),
        sa.Column("attempted_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_attempts_delivery_id_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(op.f("ix_delivery_attempts_delivery_id"), "delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
    op.drop_table("tasks")
    op.drop_table("ledger")
    op.drop_table("api_keys")
    op.drop_table("accounts")
