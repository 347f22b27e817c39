"""Operations: fair claims across accounts and retention.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Reserved in the revision chain so the work on this change can land independently of
the others; it alters nothing until that work fills it in.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
