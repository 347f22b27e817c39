"""Video tasks: segments, reserved credits, progress.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Reserved in the revision chain so the work on this change can land independently of
the others; it alters nothing until that work fills it in.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
