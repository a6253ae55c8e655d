"""Provider pauses (a 429's pause shared by every worker and surviving restarts).

Revision ID: 0006_scale
Revises: 0002
Create Date: 2026-11-22 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_scale"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create provider_pause."""
    op.create_table(
        "provider_pause",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_provider_pause")),
    )


def downgrade() -> None:
    """Drop provider_pause."""
    op.drop_table("provider_pause")
