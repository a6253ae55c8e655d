"""Reports: the digest log and the indexes the report queries read.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


INDEXES = (
    ("ix_response_report", "response", ["journey_id", "step_id", "kind", "delivery_id", "occurred_at"]),
    ("ix_response_report_day", "response", ["kind", "journey_id", "step_id", "occurred_at", "delivery_id"]),
    ("ix_delivery_report_sent", "delivery", ["journey_id", "step_id", "channel", "sent_at"]),
    ("ix_enrollment_report", "enrollment", ["journey_id", "holdout", "entered_at", "outcome"]),
    ("ix_score_snapshot_report", "score_snapshot", ["day", "subject_type", "band"]),
)


def upgrade() -> None:
    """Create digest_send and the report indexes."""
    op.create_table(
        "digest_send",
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("week", "recipient", name=op.f("pk_digest_send")),
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    """Drop them again."""
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("digest_send")
