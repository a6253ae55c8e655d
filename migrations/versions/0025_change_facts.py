"""The change log says which fact changed (subject_change.fact), so a journey re-evaluates a subject only for
a change to a fact its conditions read; the triggers are made again to write it, and the log's index
takes the fact after the journey id.

Rows logged before this revision name no fact: every journey reads them, as before.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engagement.store import change_log

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _drop() -> None:
    for statement in change_log.drop_statements(op.get_context().dialect.name):
        op.execute(statement)


def _create(*, facts: bool) -> None:
    dialect = op.get_context().dialect.name
    statements = change_log.create_statements(dialect, facts=facts)
    for statement in statements + change_log.ended_on_insert_statements(dialect, facts=facts):
        op.execute(statement)


def _index(*columns: str) -> None:
    op.drop_index("ix_subject_change_journey", table_name="subject_change")
    op.create_index("ix_subject_change_journey", "subject_change", list(columns))


def upgrade() -> None:
    _drop()
    op.add_column("subject_change", sa.Column("fact", sa.String(250), nullable=True))
    _index("journey_id", "fact", "txid", "seq")  # a journey reads the facts it reads by index ranges
    _create(facts=True)


def downgrade() -> None:
    _drop()  # first: SQLite's rebuild of subject_change cannot rename it under triggers that write to it
    _index("journey_id", "txid", "seq")
    with op.batch_alter_table("subject_change") as batch:
        batch.drop_column("fact")
    _create(facts=False)
