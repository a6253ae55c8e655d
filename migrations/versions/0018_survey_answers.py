"""Survey answers: one per survey delivery (NPS 0 to 10, CSAT 1 to 5), for reports, health and the `survey`
condition.

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-03 15:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "survey_answer",
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("journey_id", sa.String(100), nullable=False),
        sa.Column("step_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(5000), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('nps', 'csat')", name=op.f("ck_survey_answer_kind")),
        sa.CheckConstraint("score >= 0 AND score <= 10", name=op.f("ck_survey_answer_score")),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_survey_answer")),
    )
    op.create_index("ix_survey_answer_contact", "survey_answer", ["contact_id", "kind", "answered_at"])
    op.create_index("ix_survey_answer_step", "survey_answer", ["journey_id", "step_id"])


def downgrade() -> None:
    op.drop_table("survey_answer")
