"""Operations: worker heartbeats and per-task timings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Reserved in the revision chain so the work on this change can land independently of
the others; it alters nothing until that work fills it in.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
