"""revenue_month: each account's revenue state at the month boundaries where it changed, filled from revenue.

The retention report sums these states in one pass (store/revenue_months.py says what a state is); every
writer of revenue keeps them from here on.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-03 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engagement.store import revenue_months

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revenue_month",
        sa.Column("boundary", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("mrr", sa.Float(), nullable=False),
        sa.Column("plan", sa.String(100), nullable=True),
        sa.Column("renewal_month", sa.Integer(), nullable=True),
        sa.Column("prev_mrr", sa.Float(), nullable=False),
        sa.Column("prev_plan", sa.String(100), nullable=True),
        sa.Column("paid_before", sa.Boolean(), nullable=False),
        sa.Column("next_boundary", sa.Integer(), nullable=True),
        sa.Column("next_mrr", sa.Float(), nullable=True),
        sa.Column("next_plan", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("boundary", "account_id", name=op.f("pk_revenue_month")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_revenue_month_account_id", "revenue_month", ["account_id"])
    dialect = op.get_context().dialect.name
    columns = revenue_months.COLUMNS
    op.execute(sa.insert(revenue_months.REVENUE_MONTH).from_select(columns, revenue_months.states(dialect)))


def downgrade() -> None:
    op.drop_index("ix_revenue_month_account_id", table_name="revenue_month")
    op.drop_table("revenue_month")
