"""Revenue rows: an account's MRR over time, for the retention report and journeys judged on retention.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revenue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mrr", sa.Float(), nullable=False),
        sa.Column("plan", sa.String(100), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revenue")),
        sa.UniqueConstraint("account_id", "effective_at", name=op.f("uq_revenue_account_id_effective_at")),
    )


def downgrade() -> None:
    op.drop_table("revenue")
