"""Initial schema: every engagement table.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 16:05:37.752304
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create every table, index and constraint."""
    op.create_table(
        "account",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("plan", sa.String(length=100), nullable=True),
        sa.Column("mrr", sa.Float(), nullable=False),
        sa.Column("touch", sa.String(length=10), nullable=False),
        sa.Column("touch_explicit", sa.Boolean(), nullable=False),
        sa.Column("signed_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("traits", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
    )
    op.create_table(
        "account_milestone",
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "name", name=op.f("pk_account_milestone")),
    )
    op.create_index(
        "ix_account_milestone_name_reached", "account_milestone", ["name", "reached_at"], unique=False
    )

    op.create_table(
        "account_score",
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("as_of_day", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_score")),
    )
    op.create_table(
        "contact_score",
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("as_of_day", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_score")),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("enrollment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("step_id", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.String(length=1000), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=1000), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint(
            "enrollment_id", "step_id", "recipient", name=op.f("uq_delivery_enrollment_id_step_id_recipient")
        ),
    )
    op.create_index("ix_delivery_contact_sent", "delivery", ["contact_id", "sent_at"], unique=False)
    op.create_index("ix_delivery_journey_step", "delivery", ["journey_id", "step_id"], unique=False)
    op.create_index(
        op.f("ix_delivery_provider_message_id"), "delivery", ["provider_message_id"], unique=False
    )
    op.create_index("ix_delivery_status_due", "delivery", ["status", "due_at", "id"], unique=False)

    op.create_table(
        "enrollment",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("audience", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("step_id", sa.String(length=100), nullable=True),
        sa.Column("next_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trigger_ref", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment")),
    )
    op.create_index(
        "ix_enrollment_due",
        "enrollment",
        ["next_action_at"],
        unique=False,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )
    op.create_index(
        "ix_enrollment_journey_subject",
        "enrollment",
        ["journey_id", "subject_id", "entered_at"],
        unique=False,
    )
    op.create_index(
        "uq_enrollment_active_subject",
        "enrollment",
        ["journey_id", "subject_id"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )

    op.create_table(
        "event",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_event")),
        sa.UniqueConstraint("event_id", name=op.f("uq_event_event_id")),
    )
    op.create_index("ix_event_account_name_ts", "event", ["account_id", "name", "timestamp"], unique=False)
    op.create_index("ix_event_contact_name_ts", "event", ["contact_id", "name", "timestamp"], unique=False)
    op.create_index("ix_event_name_ts", "event", ["name", "timestamp"], unique=False)

    op.create_table(
        "journey",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey")),
    )
    op.create_table(
        "milestone",
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", "name", name=op.f("pk_milestone")),
    )
    op.create_index("ix_milestone_name_reached", "milestone", ["name", "reached_at"], unique=False)

    op.create_table(
        "nudge",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=False),
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("step_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.String(length=5000), nullable=False),
        sa.Column("cta_label", sa.String(length=100), nullable=True),
        sa.Column("cta_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nudge")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_nudge_delivery_id")),
    )
    op.create_index("ix_nudge_contact_created", "nudge", ["contact_id", "created_at"], unique=False)

    op.create_table(
        "response",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("contact_id", sa.String(length=200), nullable=True),
        sa.Column("journey_id", sa.String(length=100), nullable=False),
        sa.Column("step_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=True),
        sa.Column("simulated", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_response")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_response_dedupe_key")),
    )
    op.create_index(op.f("ix_response_contact_id"), "response", ["contact_id"], unique=False)
    op.create_index("ix_response_delivery_kind", "response", ["delivery_id", "kind"], unique=False)

    op.create_table(
        "score_snapshot",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("subject_type", sa.String(length=10), nullable=False),
        sa.Column("subject_id", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("band", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("day", "subject_type", "subject_id", name=op.f("pk_score_snapshot")),
    )
    op.create_table(
        "suppression",
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email_hash", name=op.f("pk_suppression")),
    )
    op.create_table(
        "contact",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=False),
        sa.Column("last_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("traits", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], name=op.f("fk_contact_account_id_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact")),
    )
    op.create_index(op.f("ix_contact_account_id"), "contact", ["account_id"], unique=False)
    op.create_index(op.f("ix_contact_created_at"), "contact", ["created_at"], unique=False)
    op.create_index(op.f("ix_contact_email"), "contact", ["email"], unique=False)


def downgrade() -> None:
    """Drop every table (their indexes and constraints go with them)."""
    op.drop_table("contact")
    op.drop_table("suppression")
    op.drop_table("score_snapshot")
    op.drop_table("response")
    op.drop_table("nudge")
    op.drop_table("milestone")
    op.drop_table("journey")
    op.drop_table("event")
    op.drop_table("enrollment")
    op.drop_table("delivery")
    op.drop_table("contact_score")
    op.drop_table("account_score")
    op.drop_table("account_milestone")
    op.drop_table("account")
