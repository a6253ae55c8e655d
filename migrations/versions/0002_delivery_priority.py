"""Delivery priority (capped messages go out in priority order) and the claim index that serves it.

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
    op.drop_index("ix_delivery_status_due", table_name="delivery")
    op.create_index("ix_delivery_claim", "delivery", ["status", "due_at", sa.text("priority DESC"), "id"])


def downgrade() -> None:
    """Drop delivery.priority and its claim index."""
    op.drop_index("ix_delivery_claim", table_name="delivery")
    op.create_index("ix_delivery_status_due", "delivery", ["status", "due_at", "id"])
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("priority")
