"""Provider pauses (a 429's pause shared by every worker and surviving restarts); the due index per journey.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    """Create provider_pause; index due enrollments by journey first."""
    op.create_table(
        "provider_pause",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_provider_pause")),
    )
    _due_index(["journey_id", "next_action_at", "id"])


def downgrade() -> None:
    """Drop provider_pause; the due index goes back to next_action_at alone."""
    _due_index(["next_action_at"])
    op.drop_table("provider_pause")


def _due_index(columns: list[str]) -> None:
    op.drop_index("ix_enrollment_due", table_name="enrollment")
    op.create_index(
        "ix_enrollment_due", "enrollment", columns, unique=False, sqlite_where=ACTIVE, postgresql_where=ACTIVE
    )
