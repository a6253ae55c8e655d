"""Stripe subscription events (each event id once; kept pending until their account appears) and each
subscription's MRR over time, from which the `stripe` revenue rows are summed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stripe_event",
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subscription_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("mrr", sa.Float(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_stripe_event")),
    )
    op.create_index(
        "ix_stripe_event_pending",
        "stripe_event",
        ["account_id"],
        sqlite_where=sa.text("applied_at IS NULL"),
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    op.create_table(
        "stripe_subscription",
        sa.Column("subscription_id", sa.String(255), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("mrr", sa.Float(), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", "effective_at", name=op.f("pk_stripe_subscription")),
    )
    op.create_index(
        op.f("ix_stripe_subscription_account_id"), "stripe_subscription", ["account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_stripe_subscription_account_id"), table_name="stripe_subscription")
    op.drop_table("stripe_subscription")
    op.drop_index("ix_stripe_event_pending", table_name="stripe_event")
    op.drop_table("stripe_event")
