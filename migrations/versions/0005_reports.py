"""Reports: the digest log and the indexes the report queries read.

Revision ID: 0005_reports
Revises: 0002
Create Date: 2026-11-22 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005_reports"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create digest_send and the report indexes."""
    op.create_table(
        "digest_send",
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", "recipient", name=op.f("pk_digest_send")),
    )
    op.create_index(
        "ix_response_report", "response", ["journey_id", "step_id", "kind", "delivery_id", "occurred_at"]
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_response_report", table_name="response")
    op.drop_table("digest_send")
