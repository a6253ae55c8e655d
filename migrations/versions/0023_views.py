"""The CS views: search indexes (lower-cased contact email, first and last name, account name) and the
test_send ledger (a step sent to a test address; never a delivery, so no report counts it).

Prefix search (views/search.py) reads them as `lower(x) LIKE 'p%'` on PostgreSQL (text_pattern_ops, so
any collation serves it) and as a range `lower(x) >= 'p' AND lower(x) < 'p' || U+10FFFF` on SQLite.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engagement.store import schema

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "test_send",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("journey_id", sa.String(100), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("contact_id", sa.String(200), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(1000), nullable=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("provider_message_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.String(1000), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_send")),
    )
    op.create_index("ix_test_send_contact", "test_send", ["contact_id", "created_at"])
    pattern = " text_pattern_ops" if op.get_bind().dialect.name == "postgresql" else ""
    for name, table, column in schema.SEARCH_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} (lower({column}){pattern})")


def downgrade() -> None:
    op.drop_index("ix_test_send_contact", table_name="test_send")
    op.drop_table("test_send")
    for name, table, _ in schema.SEARCH_INDEXES:
        op.drop_index(name, table_name=table)
