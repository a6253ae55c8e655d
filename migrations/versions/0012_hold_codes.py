"""Hold codes: why a queued delivery waits, as a code that reports count instead of the reason text.

Existing held rows get their code from the reason text dispatch wrote before this revision.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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


def upgrade() -> None:
    """Add delivery.hold_code and fill it in from the reason texts."""
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("hold_code", sa.String(length=30), nullable=True))
    cases = " ".join(f"WHEN status_reason LIKE '{text}%' THEN '{code}'" for text, code in HELD_TEXTS.items())
    op.execute(f"UPDATE delivery SET hold_code = CASE {cases} END WHERE status_reason LIKE 'held: %'")


def downgrade() -> None:
    """Drop delivery.hold_code (the reason texts stay)."""
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("hold_code")
