"""The tables. Idempotency lives here: unique keys per (enrollment, step, recipient) and
per provider event, one active enrollment per (journey, subject)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import CheckConstraint, Column, Index, Table, Text, UniqueConstraint, func, text
from sqlmodel import Field, SQLModel

from engagement import vocab
from engagement.store.types import BigId, JsonDoc, UTCDateTime

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = SQLModel.metadata


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    # the column default covers Core inserts that leave the column out (a new row without traits)
    return Field(default_factory=dict, sa_column=Column(JsonDoc, nullable=False, default=dict))


class Account(SQLModel, table=True):
    """A customer company."""

    __tablename__ = "account"
    id: str = Field(primary_key=True, max_length=200)
    name: str = Field(default="", max_length=300)
    plan: str | None = Field(default=None, max_length=100)
    mrr: float = 0.0
    touch: str = Field(default="tech", max_length=10)
    touch_explicit: bool = False
    signed_up_at: datetime | None = _ts()
    renewal_date: date | None = None
    traits: dict[str, Any] = _json()
    updated_at: datetime | None = _ts()


class Revenue(SQLModel, table=True):
    """From `effective_at` on, the account pays `mrr` a month (PRODUCT.md, Revenue and retention).

    An account's MRR at an instant is the `mrr` of its latest row at or before it; none means 0. One row
    per (account, instant): writing the same row again changes nothing.
    """

    __tablename__ = "revenue"
    __table_args__ = (UniqueConstraint("account_id", "effective_at"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    account_id: str = Field(max_length=200)
    effective_at: datetime = _ts(nullable=False)
    mrr: float = 0.0
    plan: str | None = Field(default=None, max_length=100)
    renewal_date: date | None = None
    source: str = Field(default="import", max_length=20)  # import | account | segment | stripe | demo
    recorded_at: datetime | None = _ts()


class RevenueMonth(SQLModel, table=True):
    """An account's revenue state at a month boundary where it changed, beside its previous and next state.

    Derived from `revenue` (store/revenue_months.py), rewritten for an account whenever one of its revenue
    rows is: `boundary` is a month number (year * 12 + month - 1) and the state is the account's last
    revenue row at or before that month's first instant, among the rows after the previous month's (so
    an account has a state only at boundaries where a row fell). In boundary order on SQLite (no rowid),
    so the retention report's sums per boundary read it in order and sort nothing.
    """

    __tablename__ = "revenue_month"
    __table_args__ = (Index("ix_revenue_month_account_id", "account_id"), {"sqlite_with_rowid": False})
    boundary: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    account_id: str = Field(primary_key=True, max_length=200)
    mrr: float  # 0 for a row of 0 or less
    plan: str | None = Field(default=None, max_length=100)
    renewal_month: int | None = None  # the month number of the row's renewal date
    prev_mrr: float  # the previous state's MRR; 0 when there is none
    prev_plan: str | None = Field(default=None, max_length=100)
    paid_before: bool  # some row before the previous boundary paid something
    next_boundary: int | None = None  # the next state's; none when this is the latest
    next_mrr: float | None = None
    next_plan: str | None = Field(default=None, max_length=100)


class StripeEvent(SQLModel, table=True):
    """A Stripe subscription event taken in, once per event id, with the subscription MRR it leaves.

    `applied_at` is empty while the event's account is not known yet; it is applied when the account appears.
    """

    __tablename__ = "stripe_event"
    __table_args__ = (
        Index(
            "ix_stripe_event_pending",
            "account_id",
            sqlite_where=text("applied_at IS NULL"),
            postgresql_where=text("applied_at IS NULL"),
        ),
    )
    event_id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    created: datetime = _ts(nullable=False)  # the event's `created`: when its revenue row takes effect
    subscription_id: str = Field(max_length=255)
    account_id: str = Field(max_length=200)
    status: str = Field(max_length=40)
    mrr: float = 0.0
    received_at: datetime = _ts(nullable=False)
    applied_at: datetime | None = _ts()


class StripeSubscription(SQLModel, table=True):
    """From `effective_at` on, a Stripe subscription adds `mrr` to its account's MRR.

    An account's Stripe MRR at an instant is the sum over its subscriptions of each one's latest row at or
    before it; the revenue rows with source `stripe` are that sum at each instant a subscription changed.
    """

    __tablename__ = "stripe_subscription"
    subscription_id: str = Field(primary_key=True, max_length=255)
    effective_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    account_id: str = Field(max_length=200, index=True)
    mrr: float = 0.0
    event_id: str = Field(max_length=255)


class Contact(SQLModel, table=True):
    """A user of an account; the person journeys talk to."""

    __tablename__ = "contact"
    # the erased contacts only (almost always none): an incoming event's contact is checked against it
    __table_args__ = (
        Index(
            "ix_contact_erased",
            "id",
            sqlite_where=text("erased_at IS NOT NULL"),
            postgresql_where=text("erased_at IS NOT NULL"),
        ),
    )
    id: str = Field(primary_key=True, max_length=200)
    account_id: str = Field(foreign_key="account.id", index=True, max_length=200)
    email: str | None = Field(default=None, index=True, max_length=320)
    first_name: str = Field(default="", max_length=200)
    last_name: str = Field(default="", max_length=200)
    role: str | None = Field(default=None, max_length=100)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime | None = _ts(index=True)
    traits: dict[str, Any] = _json()
    unsubscribed_at: datetime | None = _ts()
    erased_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class Event(SQLModel, table=True):
    """Something a contact did, from the product, an import or the engine itself."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_contact_name_ts", "contact_id", "name", "timestamp"),
        Index("ix_event_account_name_ts", "account_id", "name", "timestamp"),
        # covering for the scorecards' set-based metrics (health/metrics.py): an active-day or event count
        # over every account reads this index alone, never the rows (migration 0022 widened it)
        Index("ix_event_name_ts", "name", "timestamp", "account_id", "contact_id", "source"),
    )
    pk: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    event_id: str | None = Field(default=None, unique=True, max_length=200)
    contact_id: str = Field(max_length=200)
    account_id: str | None = Field(default=None, max_length=200)
    name: str = Field(max_length=200)
    timestamp: datetime = _ts(nullable=False)
    properties: dict[str, Any] = _json()
    source: str = Field(default="product", max_length=20)
    received_at: datetime = _ts(nullable=False)


class Milestone(SQLModel, table=True):
    """The first time a named event happened for a contact."""

    __tablename__ = "milestone"
    __table_args__ = (Index("ix_milestone_name_reached", "name", "reached_at"),)
    contact_id: str = Field(primary_key=True, max_length=200)
    name: str = Field(primary_key=True, max_length=200)
    account_id: str | None = Field(default=None, max_length=200)
    reached_at: datetime = _ts(nullable=False)


class AccountMilestone(SQLModel, table=True):
    """The first time a named event happened for anyone at an account."""

    __tablename__ = "account_milestone"
    __table_args__ = (Index("ix_account_milestone_name_reached", "name", "reached_at"),)
    account_id: str = Field(primary_key=True, max_length=200)
    name: str = Field(primary_key=True, max_length=200)
    reached_at: datetime = _ts(nullable=False)


class JourneyRecord(SQLModel, table=True):
    """What the engine last saw of a journey file (status, version, and its steps' outline: moves.py)."""

    __tablename__ = "journey"
    id: str = Field(primary_key=True, max_length=100)
    name: str = Field(default="", max_length=300)
    status: str = Field(default="draft", max_length=10)
    version: str = Field(default="", max_length=64)
    source: str = Field(default="", max_length=500)
    updated_at: datetime | None = _ts()
    steps: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDoc, nullable=True))


class JourneyVersion(SQLModel, table=True):
    """A version of a journey file the engine ran: its text and its shape (journeys/versions.py), kept for good."""

    __tablename__ = "journey_version"
    journey_id: str = Field(primary_key=True, max_length=100)
    version: str = Field(primary_key=True, max_length=64)
    content: str = Field(sa_column=Column(Text, nullable=False))
    shape: dict[str, Any] = _json()
    first_run_at: datetime = _ts(nullable=False)


class Enrollment(SQLModel, table=True):
    """One contact (or account) in one journey, from entry to exit."""

    __tablename__ = "enrollment"
    __table_args__ = (
        Index("ix_enrollment_journey_subject", "journey_id", "subject_id", "entered_at"),
        Index("ix_enrollment_report", "journey_id", "holdout", "entered_at", "outcome"),
        Index(
            "uq_enrollment_active_subject",
            "journey_id",
            "subject_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        # per journey: advancing one journey's due enrollments never walks past another journey's
        Index(
            "ix_enrollment_due",
            "journey_id",
            "next_action_at",
            "id",
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        CheckConstraint(vocab.one_of("state", vocab.EnrollmentState), name="state"),
        CheckConstraint(vocab.one_of("outcome", vocab.EnrollmentOutcome), name="outcome"),
    )
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    journey_id: str = Field(max_length=100)
    audience: str = Field(default="contact", max_length=10)
    subject_id: str = Field(max_length=200)
    account_id: str | None = Field(default=None, max_length=200)
    holdout: bool = False
    state: str = Field(default="active", max_length=10)
    outcome: str | None = Field(default=None, max_length=20)
    end_reason: str | None = Field(default=None, max_length=200)
    step_id: str | None = Field(default=None, max_length=100)
    next_action_at: datetime | None = _ts()
    wait_started_at: datetime | None = _ts()
    entered_at: datetime = _ts(nullable=False)
    ended_at: datetime | None = _ts()
    trigger_ref: str | None = Field(default=None, max_length=200)
    journey_version: str | None = Field(default=None, max_length=64)  # the version it entered under


class EnrollmentMove(SQLModel, table=True):
    """An enrollment moved to another step, or ended, because its step left the journey file."""

    __tablename__ = "enrollment_move"
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    enrollment_id: int = Field(sa_column=Column(BigId, nullable=False, index=True))
    journey_id: str = Field(max_length=100)
    from_step: str = Field(max_length=100)
    to_step: str | None = Field(default=None, max_length=100)  # None: the enrollment ended
    reason: str = Field(max_length=200)
    journey_version: str = Field(default="", max_length=64)
    moved_at: datetime = _ts(nullable=False)


class Delivery(SQLModel, table=True):
    """One message for one enrollment step and one recipient, with its lifecycle."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id", "recipient"),
        # (journey_id, step_id) lookups use this index's prefix; queuing writes one index fewer
        Index("ix_delivery_report_sent", "journey_id", "step_id", "channel", "sent_at"),
        Index("ix_delivery_contact_sent", "contact_id", "sent_at"),
        # a queued delivery has no provider id yet: it enters this index when it is sent, not when queued
        Index(
            "ix_delivery_provider_message_id",
            "provider_message_id",
            sqlite_where=text("provider_message_id IS NOT NULL"),
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
        CheckConstraint(vocab.one_of("status", vocab.DeliveryStatus), name="status"),
        CheckConstraint(vocab.one_of("hold_code", vocab.HoldCode), name="hold_code"),
        CheckConstraint(vocab.one_of("survey_kind", vocab.SurveyKind), name="survey_kind"),
    )
    id: str = Field(primary_key=True, max_length=36)
    enrollment_id: int = Field(sa_column=Column(BigId, nullable=False))
    journey_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    channel: str = Field(max_length=10)
    recipient: str = Field(max_length=200)
    contact_id: str | None = Field(default=None, max_length=200)
    status: str = Field(default="queued", max_length=20)
    status_reason: str | None = Field(default=None, max_length=1000)
    to_address: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=1000)
    provider: str | None = Field(default=None, max_length=20)
    provider_message_id: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    due_at: datetime = _ts(nullable=False)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime | None = _ts()
    sent_at: datetime | None = _ts()
    priority: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    hold_code: str | None = Field(
        default=None, max_length=30
    )  # a vocab.HoldCode while held; reports count it
    survey_kind: str | None = Field(default=None, max_length=10)  # a survey step's vocab.SurveyKind
    journey_version: str | None = Field(default=None, max_length=64)  # the version that queued it
    variant: str | None = Field(default=None, max_length=100)  # the step's variant this recipient got


class Response(SQLModel, table=True):
    """Something a recipient did with a delivery: open, click, seen, unsubscribe…"""

    __tablename__ = "response"
    __table_args__ = (
        Index("ix_response_delivery_kind", "delivery_id", "kind"),
        Index("uq_response_provider_event_id", "provider_event_id", unique=True),
        # reports: distinct deliveries per (journey, step, kind) in index order, and per day by index ranges
        Index("ix_response_report", "journey_id", "step_id", "kind", "delivery_id", "occurred_at"),
        Index("ix_response_report_day", "kind", "journey_id", "step_id", "occurred_at", "delivery_id"),
    )
    pk: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    delivery_id: str = Field(max_length=36)
    contact_id: str | None = Field(default=None, index=True, max_length=200)
    journey_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    kind: str = Field(max_length=20)
    occurred_at: datetime = _ts(nullable=False)
    dedupe_key: str | None = Field(default=None, unique=True, max_length=300)
    simulated: bool = False
    data: dict[str, Any] = _json()
    # the provider's own id for the event (SendGrid's sg_event_id): a second way to spot a retry
    provider_event_id: str | None = Field(default=None, max_length=200)


class SurveyAnswer(SQLModel, table=True):
    """A contact's answer to one survey delivery (PRODUCT.md, Surveys); answering again updates it."""

    __tablename__ = "survey_answer"
    __table_args__ = (
        Index("ix_survey_answer_contact", "contact_id", "kind", "answered_at"),
        Index("ix_survey_answer_step", "journey_id", "step_id"),
        CheckConstraint(vocab.one_of("kind", vocab.SurveyKind), name="kind"),
        CheckConstraint("score >= 0 AND score <= 10", name="score"),
    )
    delivery_id: str = Field(primary_key=True, max_length=36)
    contact_id: str = Field(max_length=200)
    account_id: str = Field(max_length=200)
    journey_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    kind: str = Field(max_length=10)
    score: int
    comment: str | None = Field(default=None, max_length=5000)
    answered_at: datetime = _ts(nullable=False)


class IntakeMessage(SQLModel, table=True):
    """A Segment messageId already applied (identify and group calls; track and page de-duplicate as events)."""

    __tablename__ = "intake_message"
    message_id: str = Field(primary_key=True, max_length=200)
    type: str = Field(max_length=20)
    received_at: datetime = _ts(nullable=False)


class Nudge(SQLModel, table=True):
    """An in-app message waiting in a contact's inbox."""

    __tablename__ = "nudge"
    __table_args__ = (Index("ix_nudge_contact_created", "contact_id", "created_at"),)
    id: str = Field(primary_key=True, max_length=36)
    delivery_id: str = Field(unique=True, max_length=36)
    contact_id: str = Field(max_length=200)
    journey_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    title: str = Field(max_length=300)
    body: str = Field(default="", max_length=5000)
    cta_label: str | None = Field(default=None, max_length=100)
    cta_url: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime | None = _ts()
    seen_at: datetime | None = _ts()
    clicked_at: datetime | None = _ts()
    dismissed_at: datetime | None = _ts()
    survey_kind: str | None = Field(default=None, max_length=10)  # a survey: its score buttons
    survey_comment: str | None = Field(default=None, max_length=300)  # a survey: the comment question


class Suppression(SQLModel, table=True):
    """An address we must not email; keyed by hash so erasure keeps the opt-out."""

    __tablename__ = "suppression"
    email_hash: str = Field(primary_key=True, max_length=64)
    email: str | None = Field(default=None, max_length=320)
    reason: str = Field(max_length=20)
    source: str = Field(default="", max_length=200)
    created_at: datetime = _ts(nullable=False)


class SuppressionRemoval(SQLModel, table=True):
    """When a suppression was lifted by hand: a provider event older than this does not bring it back."""

    __tablename__ = "suppression_removal"
    email_hash: str = Field(primary_key=True, max_length=64)
    removed_at: datetime = _ts(nullable=False)


class DashboardSession(SQLModel, table=True):
    """One dashboard login: the cookie holds the token, this row its hash; deleting the row ends it.

    `credential` fingerprints what the user logged in with (their password hash, or the server key), so
    a user removed from `reports.users`, a changed password or a server key taken out of
    `api.server_keys` ends the session too.
    """

    __tablename__ = "dashboard_session"
    token_hash: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=200)
    credential: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False, index=True)


class LoginThrottle(SQLModel, table=True):
    """Login attempts per user name or client address in the current window, shared by every server process."""

    __tablename__ = "login_throttle"
    key: str = Field(primary_key=True, max_length=300)
    attempts: int = 0
    window_start: datetime = _ts(nullable=False)


class ContactScore(SQLModel, table=True):
    """A contact's engagement score as of `as_of_day` (days since the Unix epoch)."""

    __tablename__ = "contact_score"
    contact_id: str = Field(primary_key=True, max_length=200)
    value: float = 0.0
    as_of_day: float = 0.0


class AccountScore(SQLModel, table=True):
    """An account's engagement score as of `as_of_day` (days since the Unix epoch)."""

    __tablename__ = "account_score"
    account_id: str = Field(primary_key=True, max_length=200)
    value: float = 0.0
    as_of_day: float = 0.0


class ScoreCredit(SQLModel, table=True):
    """One credited response or product fact, at most once per key (e.g. one open per delivery)."""

    __tablename__ = "score_credit"
    key: str = Field(primary_key=True, max_length=300)
    contact_id: str = Field(index=True, max_length=200)
    account_id: str | None = Field(default=None, index=True, max_length=200)
    kind: str = Field(max_length=30)
    detail: str = Field(default="", max_length=300)
    weight: float = 0.0
    at_day: float = 0.0


class ScoreWatermark(SQLModel, table=True):
    """How far scoring has read the response and event tables; its row is the scorers' lock."""

    __tablename__ = "score_watermark"
    name: str = Field(primary_key=True, max_length=30)
    response_settled: int = Field(default=0, sa_column=Column(BigId, nullable=False, default=0))
    response_pending: int = Field(default=0, sa_column=Column(BigId, nullable=False, default=0))
    event_settled: int = Field(default=0, sa_column=Column(BigId, nullable=False, default=0))
    event_pending: int = Field(default=0, sa_column=Column(BigId, nullable=False, default=0))
    pending_xid: int | None = Field(default=None, sa_column=Column(BigId, nullable=True))
    pending_at: datetime | None = _ts()
    ran_at: datetime | None = _ts()


class ScoreSnapshot(SQLModel, table=True):
    """A daily record of each score and band, for trends."""

    __tablename__ = "score_snapshot"
    __table_args__ = (Index("ix_score_snapshot_report", "day", "subject_type", "band"),)
    day: date = Field(primary_key=True)
    subject_type: str = Field(primary_key=True, max_length=10)
    subject_id: str = Field(primary_key=True, max_length=200)
    value: float = 0.0
    band: str = Field(default="red", max_length=10)


class HealthScore(SQLModel, table=True):
    """An account's scorecard health: the scorecard that applies, its score (0 to 100) and band.

    Rewritten by a refresh only where the scorecard, score or band changed (`changed_at`), so the
    change log's triggers mark exactly the accounts whose health moved. No score: band `unknown`.
    """

    __tablename__ = "health_score"
    __table_args__ = (Index("ix_health_score_band", "band"),)
    account_id: str = Field(primary_key=True, max_length=200)
    scorecard_id: str | None = Field(default=None, max_length=100)
    score: float | None = None
    band: str = Field(default="unknown", max_length=10)
    changed_at: datetime | None = _ts()


class HealthMeasure(SQLModel, table=True):
    """One measure of an account's scorecard at the last refresh: its value, points and weight.

    `value` NULL: the metric had no value; `points` NULL: the measure was skipped (`missing: skip`).
    """

    __tablename__ = "health_measure"
    account_id: str = Field(primary_key=True, max_length=200)
    measure_id: str = Field(primary_key=True, max_length=100)
    scorecard_id: str = Field(max_length=100)
    value: float | None = None
    points: float | None = None
    weight: float = 0.0


class HealthSnapshot(SQLModel, table=True):
    """A daily record of each account's health score and band, for `health_change` and drops."""

    __tablename__ = "health_snapshot"
    day: date = Field(primary_key=True)
    account_id: str = Field(primary_key=True, max_length=200)
    scorecard_id: str | None = Field(default=None, max_length=100)
    score: float | None = None
    band: str = Field(default="unknown", max_length=10)


class DigestSend(SQLModel, table=True):
    """One weekly digest sent to one recipient, so the scheduler sends each week's once."""

    __tablename__ = "digest_send"
    week: str = Field(primary_key=True, max_length=10)
    recipient: str = Field(primary_key=True, max_length=320)
    sent_at: datetime = _ts(nullable=False)


class TestSend(SQLModel, table=True):
    """One step rendered for a contact and sent to a test address (`preview --send-to`, the contact page).

    Its own ledger, not a `delivery`: it belongs to no enrollment, may be sent any number of times, and no
    report, cap or dispatch query can count it by forgetting a filter.
    """

    __tablename__ = "test_send"
    __table_args__ = (Index("ix_test_send_contact", "contact_id", "created_at"),)
    id: str = Field(primary_key=True, max_length=36)
    journey_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    contact_id: str = Field(max_length=200)
    to_address: str = Field(max_length=320)
    subject: str | None = Field(default=None, max_length=1000)
    provider: str = Field(max_length=20)
    provider_message_id: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=20)  # sending | sent | failed
    status_reason: str | None = Field(default=None, max_length=1000)
    requested_by: str = Field(max_length=200)  # the dashboard user, or "cli"
    created_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts()


class ProviderPause(SQLModel, table=True):
    """Until when a provider asked us to stop sending (a 429), shared by every worker and restart."""

    __tablename__ = "provider_pause"
    provider: str = Field(primary_key=True, max_length=20)
    paused_until: datetime = _ts(nullable=False)
    reason: str | None = Field(default=None, max_length=1000)
    updated_at: datetime | None = _ts()


class SubjectChange(SQLModel, table=True):
    """One write to a fact a condition reads (contact, account, event, milestone, score) or an enrollment's end.

    Written by database triggers (store/change_log.py), so every writer leaves its trace; the tick
    re-evaluates only the subjects changed since its journey's watermark. `txid` (PostgreSQL) is the
    writing transaction's id: transactions commit out of order, so readers go by it, not by `seq`.
    """

    __tablename__ = "subject_change"
    __table_args__ = (
        # journey_id first: a journey reads the fact rows (NULL) and its own enrollment ends, never the
        # others' ends; then the facts it reads (migration 0025), then txid (PostgreSQL's order; NULL on
        # SQLite) and seq (SQLite's order)
        Index("ix_subject_change_journey", "journey_id", "fact", "txid", "seq"),
        {"sqlite_autoincrement": True},  # a seq is never handed out twice
    )
    seq: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    contact_id: str | None = Field(default=None, max_length=200)
    account_id: str | None = Field(default=None, max_length=200)
    journey_id: str | None = Field(default=None, max_length=100)  # set for an enrollment's end
    txid: int | None = Field(default=None, sa_column=Column(BigId, nullable=True))
    # which fact: the table, with the event's or milestone's name or the survey's kind ("event:active_day");
    # NULL (rows logged before migration 0025): any fact
    fact: str | None = Field(default=None, max_length=250)


class JourneyWatermark(SQLModel, table=True):
    """Where a journey's last evaluation stood: the instant, the change mark, what it evaluated."""

    __tablename__ = "journey_watermark"
    journey_id: str = Field(primary_key=True, max_length=100)
    signature: str = Field(max_length=200)
    evaluated_at: datetime = _ts(nullable=False)
    change_mark: int = Field(default=0, sa_column=Column(BigId, nullable=False, default=0))


def table(model: type[SQLModel]) -> Table:
    """The SQLAlchemy Core table behind a model, for set-based statements."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


# The claim order (due_at, priority DESC, id) served by one index, so a claim never sorts the backlog.
Index(
    "ix_delivery_claim",
    table(Delivery).c.status,
    table(Delivery).c.due_at,
    table(Delivery).c.priority.desc(),
    table(Delivery).c.id,
)

# Prefix search on the CS views (views/search.py) reads `lower(column)` indexes: in byte order on
# PostgreSQL (text_pattern_ops serves `LIKE 'x%'` under any collation); SQLite compares bytes already.
SEARCH_INDEXES = (
    ("ix_contact_email_lower", "contact", "email"),
    ("ix_contact_first_name_lower", "contact", "first_name"),
    ("ix_contact_last_name_lower", "contact", "last_name"),
    ("ix_account_name_lower", "account", "name"),
)
_SEARCHED = {"contact": table(Contact), "account": table(Account)}
for _name, _table, _column in SEARCH_INDEXES:
    Index(
        _name,
        func.lower(_SEARCHED[_table].c[_column]).label(_column),
        postgresql_ops={_column: "text_pattern_ops"},
    )


accounts = table(Account)
contacts = table(Contact)
events = table(Event)
milestones = table(Milestone)
account_milestones = table(AccountMilestone)
journeys = table(JourneyRecord)
journey_versions = table(JourneyVersion)
enrollments = table(Enrollment)
enrollment_moves = table(EnrollmentMove)
deliveries = table(Delivery)
responses = table(Response)
survey_answers = table(SurveyAnswer)
intake_messages = table(IntakeMessage)
nudges = table(Nudge)
suppressions = table(Suppression)
suppression_removals = table(SuppressionRemoval)
dashboard_sessions = table(DashboardSession)
login_throttles = table(LoginThrottle)
contact_scores = table(ContactScore)
account_scores = table(AccountScore)
score_snapshots = table(ScoreSnapshot)
score_credits = table(ScoreCredit)
score_watermarks = table(ScoreWatermark)
digest_sends = table(DigestSend)
provider_pauses = table(ProviderPause)
test_sends = table(TestSend)
subject_changes = table(SubjectChange)
journey_watermarks = table(JourneyWatermark)
stripe_events = table(StripeEvent)
stripe_subscriptions = table(StripeSubscription)
health_scores = table(HealthScore)
health_measures = table(HealthMeasure)
health_snapshots = table(HealthSnapshot)
