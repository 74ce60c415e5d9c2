"""hardening: second factor, persisted operations, per-organisation settings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

"""
from collections.abc import Sequence

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Filled in by the API-hardening work (issue 7)."""


def downgrade() -> None:
    """Filled in by the API-hardening work (issue 7)."""
