"""Delivery priority: the journey's priority, so capped messages go out in priority order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add delivery.priority (0 for existing rows)."""
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Drop delivery.priority."""
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("priority")
