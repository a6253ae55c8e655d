"""Hold codes and closed vocabularies: why a queued delivery waits, as a code that reports count instead
of the reason text; CHECK constraints on the words the engine relies on (engagement/vocab.py).

Existing held rows get their code from the reason text dispatch wrote before this revision. On SQLite the
CHECKs rebuild delivery and enrollment (batch mode), which drops enrollment's change-log triggers: they are
created again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from engagement.store import change_log

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the reason texts of engagement/delivery (policy.py, dispatch.py) as of 0011, and their codes
HELD_TEXTS = {
    "held: outside the send window": "send_window",
    "held: weekly email cap reached": "weekly_cap",
    "held: provider rate limit": "provider_rate_limit",
    "held: webhook rate limit": "webhook_rate_limit",
}
# the closed sets as of this revision (engagement/vocab.py), in its order
CHECKS = {
    "delivery": {
        "status": (
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
        ),
        "hold_code": tuple(HELD_TEXTS.values()),
    },
    "enrollment": {
        "state": ("active", "ended"),
        "outcome": ("converted", "exited", "completed", "holdout"),
    },
}


def _one_of(column: str, words: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(w) for w in words)})"


def _triggers(dialect: str) -> list[str]:
    """The change-log triggers as they were at this revision (before 0025's `fact` column)."""
    return change_log.create_statements(
        dialect, change_log.AS_OF_0007, facts=False
    ) + change_log.ended_on_insert_statements(dialect, facts=False)


def upgrade() -> None:
    """Add delivery.hold_code and fill it in from the reason texts."""
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("hold_code", sa.String(length=30), nullable=True))
    cases = " ".join(f"WHEN status_reason LIKE '{text}%' THEN '{code}'" for text, code in HELD_TEXTS.items())
    op.execute(f"UPDATE delivery SET hold_code = CASE {cases} END WHERE status_reason LIKE 'held: %'")
    dialect = op.get_context().dialect.name
    if dialect == "sqlite" and context.is_offline_mode():  # batch mode needs the live table to rebuild it
        op.execute("-- 0012: the CHECK constraints are added only by an online upgrade on SQLite")
        return
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column, words in columns.items():
                batch.create_check_constraint(op.f(f"ck_{table}_{column}"), _one_of(column, words))
    if dialect == "sqlite":  # IF NOT EXISTS: the other tables' triggers are still there
        for statement in _triggers(dialect):
            op.execute(statement)


def downgrade() -> None:
    """Drop the CHECKs and delivery.hold_code (the reason texts stay)."""
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("hold_code")
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for statement in _triggers(dialect):
            op.execute(statement)
