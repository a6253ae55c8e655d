"""Health scorecards: health_score (each account's scorecard, score and band), health_measure (each
measure's value and points at the last refresh), health_snapshot (daily), and change-log triggers on
health_score (a refresh that moves a score is a change the next tick's incremental evaluation must see),
and ix_event_name_ts widened to cover the scorecards' event metrics.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engagement.store import change_log
from engagement.store.types import UTCDateTime

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("health_score",)


def upgrade() -> None:
    op.create_table(
        "health_score",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("scorecard_id", sa.String(100), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("band", sa.String(10), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_health_score")),
    )
    op.create_index("ix_health_score_band", "health_score", ["band"])
    op.create_table(
        "health_measure",
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("measure_id", sa.String(100), nullable=False),
        sa.Column("scorecard_id", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("points", sa.Float(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "measure_id", name=op.f("pk_health_measure")),
    )
    op.create_table(
        "health_snapshot",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("scorecard_id", sa.String(100), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("band", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("day", "account_id", name=op.f("pk_health_snapshot")),
    )
    for statement in change_log.create_statements(op.get_context().dialect.name, TABLES, facts=False):
        op.execute(statement)
    # covering for the scorecards' metrics: counted over every account from the index alone
    op.drop_index("ix_event_name_ts", table_name="event")
    op.create_index("ix_event_name_ts", "event", ["name", "timestamp", "account_id", "contact_id", "source"])


def downgrade() -> None:
    op.drop_index("ix_event_name_ts", table_name="event")
    op.create_index("ix_event_name_ts", "event", ["name", "timestamp"])
    for statement in change_log.drop_statements(op.get_context().dialect.name, TABLES):
        op.execute(statement)
    op.drop_table("health_snapshot")
    op.drop_table("health_measure")
    op.drop_index("ix_health_score_band", table_name="health_score")
    op.drop_table("health_score")
