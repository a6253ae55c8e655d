"""Journey versions and message variants: every journey version the engine ran (journey_version), the version
an enrollment entered under and a delivery was queued by, and the variant a delivery carries.

Plain nullable columns: rows written before this revision name no version and no variant.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journey_version",
        sa.Column("journey_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("shape", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("first_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("journey_id", "version", name=op.f("pk_journey_version")),
    )
    op.add_column("enrollment", sa.Column("journey_version", sa.String(64), nullable=True))
    op.add_column("delivery", sa.Column("journey_version", sa.String(64), nullable=True))
    op.add_column("delivery", sa.Column("variant", sa.String(100), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch rebuild would drop enrollment's change-log triggers
    op.drop_column("delivery", "variant")
    op.drop_column("delivery", "journey_version")
    op.drop_column("enrollment", "journey_version")
    op.drop_table("journey_version")
