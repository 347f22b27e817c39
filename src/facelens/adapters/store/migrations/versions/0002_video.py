"""Video tasks: segments, reserved credits, progress.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

* `tasks.video`: the sampling of a video task (`interval_ms`, `max_frames`, `start_ms`,
  `end_ms`); null for an image task. A video task reserved `max_frames` credits.
* `tasks.frames_total` / `tasks.frames_done`: progress of a running video task, shown
  by the query API (null until the video is probed).
* `video_segments`: the parts of a video task that any worker claims like tasks (same
  lease rules); each holds its time range, its frame count, and once done its faces
  with segment-local track ids (`result`), stitched when the last one is done.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUEUE = sa.text("status IN ('queued', 'running')")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("video", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("tasks", sa.Column("frames_total", sa.Integer(), nullable=True))
    op.add_column("tasks", sa.Column("frames_done", sa.Integer(), nullable=True))
    op.create_table(
        "video_segments",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("task_id", _id(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("frames_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_video_segments_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_segments")),
        sa.UniqueConstraint("task_id", "seq", name=op.f("uq_video_segments_task_id_seq")),
    )
    op.create_index(
        "ix_video_segments_claimable",
        "video_segments",
        ["id"],
        postgresql_where=_QUEUE,
        sqlite_where=_QUEUE,
    )


def downgrade() -> None:
    op.drop_index("ix_video_segments_claimable", table_name="video_segments")
    op.drop_table("video_segments")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("frames_done")
        batch.drop_column("frames_total")
        batch.drop_column("video")
