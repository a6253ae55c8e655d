"""Step identity: each journey's outline of steps as last run, and a log of enrollments moved by an edit.

Unnamed steps used to get positional ids (`wait@1`); they are now anchored on named steps
(journeys/program.py). Enrollments stored at positional ids are read against the journey file at the
first tick after the upgrade and rewritten to the new ids there (moves.py), since only then are the
journey files at hand.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add journey.steps and create enrollment_move."""
    op.add_column("journey", sa.Column("steps", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True))
    op.create_table(
        "enrollment_move",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("enrollment_id", BIG_ID, nullable=False),
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("from_step", sa.String(length=100), nullable=False),
        sa.Column("to_step", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("journey_version", sa.String(length=64), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_move")),
    )
    op.create_index(
        op.f("ix_enrollment_move_enrollment_id"), "enrollment_move", ["enrollment_id"], unique=False
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index(op.f("ix_enrollment_move_enrollment_id"), table_name="enrollment_move")
    op.drop_table("enrollment_move")
    with op.batch_alter_table("journey") as batch:
        batch.drop_column("steps")
