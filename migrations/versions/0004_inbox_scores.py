"""Engagement score credits (one row per credited fact) and the scorers' watermark.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create score_credit and score_watermark."""
    op.create_table(
        "score_credit",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("at_day", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_score_credit")),
    )
    op.create_index(op.f("ix_score_credit_contact_id"), "score_credit", ["contact_id"], unique=False)
    op.create_index(op.f("ix_score_credit_account_id"), "score_credit", ["account_id"], unique=False)
    op.create_table(
        "score_watermark",
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column("response_settled", BIG, nullable=False),
        sa.Column("response_pending", BIG, nullable=False),
        sa.Column("event_settled", BIG, nullable=False),
        sa.Column("event_pending", BIG, nullable=False),
        sa.Column("pending_xid", BIG, nullable=True),
        sa.Column("pending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_score_watermark")),
    )


def downgrade() -> None:
    """Drop the score credits and the watermark."""
    op.drop_table("score_watermark")
    op.drop_index(op.f("ix_score_credit_account_id"), table_name="score_credit")
    op.drop_index(op.f("ix_score_credit_contact_id"), table_name="score_credit")
    op.drop_table("score_credit")
