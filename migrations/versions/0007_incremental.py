"""The subject change log (filled by triggers) and each journey's evaluation watermark.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 20:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engagement.store import change_log

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create subject_change and journey_watermark, then the triggers that fill the log."""
    op.create_table(
        "subject_change",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=True),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("journey_id", sa.String(length=100), nullable=True),
        sa.Column("txid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_subject_change")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_subject_change_journey", "subject_change", ["journey_id", "txid", "seq"], unique=False)
    op.create_table(
        "journey_watermark",
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_mark", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("journey_id", name=op.f("pk_journey_watermark")),
    )
    for statement in change_log.create_statements(op.get_context().dialect.name, change_log.AS_OF_0007, facts=False):
        op.execute(statement)


def downgrade() -> None:
    """Drop the triggers and both tables."""
    for statement in change_log.drop_statements(op.get_context().dialect.name, change_log.AS_OF_0007):
        op.execute(statement)
    op.drop_table("journey_watermark")
    op.drop_index("ix_subject_change_journey", table_name="subject_change")
    op.drop_table("subject_change")
