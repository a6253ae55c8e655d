"""Search indexes for the CS views: lower-cased email, first and last name of contacts, account name.

Prefix search (views/search.py) reads them as `lower(x) LIKE 'p%'` on PostgreSQL (text_pattern_ops, so
any collation serves it) and as a range `lower(x) >= 'p' AND lower(x) < 'p' || U+10FFFF` on SQLite.

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-03 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from engagement.store import schema

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pattern = " text_pattern_ops" if op.get_bind().dialect.name == "postgresql" else ""
    for name, table, column in schema.SEARCH_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} (lower({column}){pattern})")


def downgrade() -> None:
    for name, table, _ in schema.SEARCH_INDEXES:
        op.drop_index(name, table_name=table)
