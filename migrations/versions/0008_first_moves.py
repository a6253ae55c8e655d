"""Log enrollments written already ended (a journey whose first moves end it at once).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 00:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from engagement.store import change_log

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the trigger on enrollment inserts with state 'ended'."""
    for statement in change_log.ended_on_insert_statements(op.get_context().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    """Drop it."""
    for statement in change_log.drop_ended_on_insert_statements(op.get_context().dialect.name):
        op.execute(statement)
