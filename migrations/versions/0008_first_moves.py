"""The first tick's writes: log enrollments written already ended, and queue deliveries into fewer indexes.

- A trigger logs an enrollment inserted with state 'ended' (a journey whose first moves end it at once,
  enroll.py), as the update trigger logs one that ends later.
- `ix_delivery_journey_step (journey_id, step_id)` is dropped: `ix_delivery_report_sent` starts with the
  same two columns and serves those lookups.
- `ix_delivery_provider_message_id` becomes partial (provider_message_id IS NOT NULL): every lookup is by
  a provider's id, and a queued delivery has none yet.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 00:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from engagement.store import change_log

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENT = sa.text("provider_message_id IS NOT NULL")


def upgrade() -> None:
    """Create the trigger, drop the redundant index, make the provider-id index partial."""
    for statement in change_log.ended_on_insert_statements(op.get_context().dialect.name, facts=False):
        op.execute(statement)
    op.drop_index("ix_delivery_journey_step", table_name="delivery")
    op.drop_index("ix_delivery_provider_message_id", table_name="delivery")
    op.create_index(
        "ix_delivery_provider_message_id",
        "delivery",
        ["provider_message_id"],
        unique=False,
        sqlite_where=SENT,
        postgresql_where=SENT,
    )


def downgrade() -> None:
    """Put the indexes back as they were and drop the trigger."""
    op.drop_index("ix_delivery_provider_message_id", table_name="delivery")
    op.create_index("ix_delivery_provider_message_id", "delivery", ["provider_message_id"], unique=False)
    op.create_index("ix_delivery_journey_step", "delivery", ["journey_id", "step_id"], unique=False)
    for statement in change_log.drop_ended_on_insert_statements(op.get_context().dialect.name):
        op.execute(statement)
