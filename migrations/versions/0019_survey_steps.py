"""Survey steps: which survey a delivery asks (delivery.survey_kind), the `skipped_recent` status, the in-app
survey's question on the nudge, and change-log triggers on survey_answer (an answer is a change the next
tick's incremental evaluation must see).

On SQLite the CHECKs rebuild delivery (batch mode); delivery has no change-log triggers to lose.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 16:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from engagement.store import change_log

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES_0012 = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "deferred",
    "bounced",
    "dropped",
    "suppressed",
    "cancelled",
    "skipped_late",
    "in_doubt",
    "failed",
)
STATUSES = (*STATUSES_0012[:10], "skipped_recent", *STATUSES_0012[10:])  # vocab.DeliveryStatus, in its order
SURVEY_KINDS = ("nps", "csat")
TABLES = ("survey_answer",)


def _one_of(column: str, words: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(w) for w in words)})"


def upgrade() -> None:
    """Add the columns, widen the status CHECK, log survey answers."""
    dialect = op.get_context().dialect.name
    offline_sqlite = dialect == "sqlite" and context.is_offline_mode()
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("survey_kind", sa.String(length=10), nullable=True))
    with op.batch_alter_table("nudge") as batch:
        batch.add_column(sa.Column("survey_kind", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("survey_comment", sa.String(length=300), nullable=True))
    if offline_sqlite:  # batch mode needs the live table to rebuild it
        op.execute("-- 0019: the CHECK constraints are changed only by an online upgrade on SQLite")
    else:
        with op.batch_alter_table("delivery") as batch:
            batch.drop_constraint(op.f("ck_delivery_status"), type_="check")
            batch.create_check_constraint(op.f("ck_delivery_status"), _one_of("status", STATUSES))
            batch.create_check_constraint(
                op.f("ck_delivery_survey_kind"), _one_of("survey_kind", SURVEY_KINDS)
            )
    for statement in change_log.create_statements(dialect, TABLES, facts=False):
        op.execute(statement)


def downgrade() -> None:
    """Drop the triggers, the columns and `skipped_recent` (such deliveries become `cancelled`)."""
    dialect = op.get_context().dialect.name
    for statement in change_log.drop_statements(dialect, TABLES):
        op.execute(statement)
    op.execute("UPDATE delivery SET status = 'cancelled' WHERE status = 'skipped_recent'")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_constraint(op.f("ck_delivery_survey_kind"), type_="check")
        batch.drop_constraint(op.f("ck_delivery_status"), type_="check")
        batch.create_check_constraint(op.f("ck_delivery_status"), _one_of("status", STATUSES_0012))
        batch.drop_column("survey_kind")
    with op.batch_alter_table("nudge") as batch:
        batch.drop_column("survey_comment")
        batch.drop_column("survey_kind")
