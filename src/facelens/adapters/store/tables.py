"""The schema, as SQLAlchemy Core tables (no ORM: every statement is written out).

Conventions, so SQLite and PostgreSQL hold the same data:

* every time is a BIGINT of Unix epoch milliseconds (no time zones, no driver-specific
  datetime types); columns are named `*_ms`, except the two queue columns the design
  names `lease_until` and `next_attempt_at`;
* ids are BIGINT on PostgreSQL and INTEGER on SQLite, where only `INTEGER PRIMARY KEY`
  aliases the rowid and so auto-increments;
* constraint and index names come from `NAMING`, so a migration can refer to them by a
  name that is the same on both databases.

The migration in `migrations/versions/0001_initial.py` is a frozen copy of this file;
`tests/contract/test_store_migrations.py` checks that the two agree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Primary keys: BIGINT, except on SQLite where only INTEGER auto-increments."""

Millis = sa.BigInteger
"""Unix epoch milliseconds."""

QUEUE_STATUSES = ("queued", "running")
"""Task statuses the claim query looks at; the partial index covers exactly these."""


def _leased_work() -> tuple[sa.Column[Any], ...]:
    """The columns of work that workers claim under a lease (tasks, video segments):
    where it stands, how often it was claimed, and until when and by whom it is held."""
    return (
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_until", Millis, nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
    )


def _claimable_index(name: str, *columns: str) -> sa.Index:
    """The partial index a claim scans: only the rows in `QUEUE_STATUSES`."""
    statuses = ", ".join(f"'{status}'" for status in QUEUE_STATUSES)
    where = sa.text(f"status IN ({statuses})")
    return sa.Index(name, *columns, postgresql_where=where, sqlite_where=where)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("credits", sa.BigInteger, nullable=False),
    sa.Column("webhook_secret", sa.String(200), nullable=False),
    sa.Column("created_at_ms", Millis, nullable=False),
    # The last fair-queueing tag given to this account's tasks (migration 0005; see
    # store/fairness.py).
    sa.Column("fair_tag", sa.BigInteger, nullable=False, server_default="0"),
    # The conditional debits already keep the balance >= 0; this is the last line.
    sa.CheckConstraint("credits >= 0", name="credits_not_negative"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at_ms", Millis, nullable=False),
    sa.Column("revoked_at_ms", Millis, nullable=True),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False, index=True),
    sa.Column("delta", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    # No foreign key to tasks: a ledger row outlives any cleanup of old tasks.
    sa.Column("task_id", Id, nullable=True),
    sa.Column("creation_id", sa.String(64), nullable=True),
    sa.Column("created_at_ms", Millis, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("creation_id", sa.String(64), nullable=False),
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("image_url", sa.Text, nullable=False),
    sa.Column("callback_url", sa.Text, nullable=False),
    sa.Column("callback_params", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    *_leased_work(),
    sa.Column("created_at_ms", Millis, nullable=False),
    sa.Column("started_at_ms", Millis, nullable=True),
    sa.Column("ended_at_ms", Millis, nullable=True),
    sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=False),
    sa.Column("error_info", sa.Text, nullable=False),
    # Video tasks (migration 0002): the sampling (null for an image task) and, once
    # probed, its "info"; the progress the query API shows while it runs.
    sa.Column("video", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("frames_total", sa.Integer, nullable=True),
    sa.Column("frames_done", sa.Integer, nullable=True),
    # Stage timings of the run that produced the outcome (migration 0004; null where a
    # stage did not run). Queued and total time follow from the timestamps above.
    sa.Column("fetch_ms", sa.Integer, nullable=True),
    sa.Column("decode_ms", sa.Integer, nullable=True),
    sa.Column("detect_ms", sa.Integer, nullable=True),
    # Fair claims across accounts (migration 0005, store/fairness.py): claims take
    # tasks in (fair_tag, id) order through ix_tasks_fair_claimable.
    sa.Column("fair_tag", sa.BigInteger, nullable=False, server_default="0"),
    # The queue: a claim scans this index in id order (oldest first) and stops at its
    # limit. Finished tasks, the bulk of the table, are not in it.
    _claimable_index("ix_tasks_claimable", "id"),
    sa.Index("ix_tasks_account_id_creation_id", "account_id", "creation_id"),
    sa.Index("ix_tasks_account_id_status", "account_id", "status"),
    # An account's tasks newest first (the console's task list, keyset by id).
    sa.Index("ix_tasks_account_id_id", "account_id", "id"),
    # Migration 0005: the fair queue (claims), and retention (oldest end first).
    _claimable_index("ix_tasks_fair_claimable", "fair_tag", "id"),
    # Partial: a claim (queued -> running) adds no entry to it.
    sa.Index(
        "ix_tasks_ended_at_ms",
        "ended_at_ms",
        postgresql_where=sa.text("status IN ('succeeded', 'failed')"),
        sqlite_where=sa.text("status IN ('succeeded', 'failed')"),
    ),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("task_id", Id, sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("process_status", sa.SmallInteger, nullable=False),
    # Text, not JSON: retries must resend the very bytes that were signed the first time.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Millis, nullable=True),
    sa.Column("lease_until", Millis, nullable=True),
    sa.Column("dispatcher_id", sa.String(200), nullable=True),
    sa.Column("last_http_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("created_at_ms", Millis, nullable=False),
    # When the account last asked for this callback again (migration 0003).
    sa.Column("redelivered_at_ms", Millis, nullable=True),
    # One start and one complete callback per task, whoever tries to insert it twice.
    sa.UniqueConstraint("task_id", "process_status"),
    sa.Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), nullable=False, index=True),
    sa.Column("attempted_at_ms", Millis, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

workers = sa.Table(
    "workers",
    metadata,
    # One row per running worker process (migration 0004): its heartbeat, upserted every
    # few seconds, deleted when it stops gracefully. id = role@host:pid.
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at_ms", Millis, nullable=False),
    sa.Column("last_seen_ms", Millis, nullable=False),
    sa.Column("tasks_done", sa.BigInteger, nullable=False),
)


video_segments = sa.Table(
    "video_segments",
    metadata,
    # The parts of a video task that any worker claims like tasks (migration 0002;
    # adapters/store/video.py): time range, frames, lease; its faces once done.
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    # Deleting a task (retention) deletes its segments.
    sa.Column("task_id", Id, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("start_ms", Millis, nullable=False),
    sa.Column("end_ms", Millis, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("frames_done", sa.Integer, nullable=False),
    *_leased_work(),
    sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("created_at_ms", Millis, nullable=False),
    sa.UniqueConstraint("task_id", "seq"),
    _claimable_index("ix_video_segments_claimable", "id"),
)
