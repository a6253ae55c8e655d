"""Intake de-duplication: Segment messageIds of identify/group calls, and the provider's event id on responses.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add intake_message and response.provider_event_id (a unique index)."""
    op.create_table(
        "intake_message",
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_intake_message")),
    )
    op.add_column("response", sa.Column("provider_event_id", sa.String(length=200), nullable=True))
    op.create_index("uq_response_provider_event_id", "response", ["provider_event_id"], unique=True)


def downgrade() -> None:
    """Drop them."""
    op.drop_index("uq_response_provider_event_id", table_name="response")
    with op.batch_alter_table("response") as batch:
        batch.drop_column("provider_event_id")
    op.drop_table("intake_message")
