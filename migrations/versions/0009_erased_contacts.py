"""Erased contacts: an index of them, so an incoming event's contact is checked cheaply.

Events that arrive for an erased contact are stored without their properties (ingest.insert_events), as
the erasure left that contact's earlier events. The partial index holds the erased contacts only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 03:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERASED = sa.text("erased_at IS NOT NULL")


def upgrade() -> None:
    """Create the partial index of erased contacts."""
    op.create_index(
        "ix_contact_erased", "contact", ["id"], unique=False, sqlite_where=ERASED, postgresql_where=ERASED
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_contact_erased", table_name="contact")
