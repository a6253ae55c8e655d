"""The closed sets of words the engine stores and compares, each defined once.

The values are what the database holds; the schema's CHECK constraints are built from these sets.
"""

from __future__ import annotations

from enum import StrEnum


class HoldCode(StrEnum):
    """Why a queued delivery waits past its due time; reports count these, not the reason text."""

    SEND_WINDOW = "send_window"
    WEEKLY_CAP = "weekly_cap"
    PROVIDER_RATE_LIMIT = "provider_rate_limit"  # the email provider's 429, or its pause still running
    WEBHOOK_RATE_LIMIT = "webhook_rate_limit"


class DeliveryStatus(StrEnum):
    """Where a delivery is in its lifecycle: queued → sending → sent → delivered / bounced / …"""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"
    SKIPPED_LATE = "skipped_late"
    SKIPPED_RECENT = (
        "skipped_recent"  # a survey: the contact was asked the same kind within surveys.min_interval
    )
    IN_DOUBT = "in_doubt"
    FAILED = "failed"


class Channel(StrEnum):
    """How a message goes out: a journey's message step kind, and the channel its deliveries are stored with."""

    EMAIL = "email"
    IN_APP = "in_app"
    NOTIFY = "notify"  # a named webhook


class EnrollmentState(StrEnum):
    """Whether an enrollment is still moving through its journey."""

    ACTIVE = "active"
    ENDED = "ended"


class EnrollmentOutcome(StrEnum):
    """How an ended enrollment ended."""

    CONVERTED = "converted"  # reached the goal
    EXITED = "exited"  # the exit condition held, its step was removed, or the contact was erased
    COMPLETED = "completed"  # ran out of steps
    HOLDOUT = "holdout"  # ran out of steps in the holdout


class HoldoutBy(StrEnum):
    """What a journey's holdout hashes: each subject on its own, or the subject's account (B2B)."""

    CONTACT = "contact"  # each subject (for an account journey, the account itself)
    ACCOUNT = "account"  # every contact of an account lands in the same group


class Standing(StrEnum):
    """Where one subject stands in one journey (`engagement explain`): enrolled, entering, or why not."""

    ENROLLED = "enrolled"  # an active enrollment
    ENTERS = "enters"  # not enrolled; the next tick enrolls it
    DRAFT = "draft"  # the journey is a draft: it never runs
    PAUSED = "paused"  # the journey is paused: nobody enters
    NO_ACCOUNT = "no_account"  # a contact whose account is not imported (conditions read both)
    ERASED = "erased"
    RE_ENTRY = "re_entry"  # enrolled before and `re_entry` does not allow another
    CONVERTED = "converted"  # enrolled before, converted, and `re_entry` does not allow another
    TRIGGER = "trigger"
    FILTER = "filter"
    GOAL_REACHED = "goal_reached"  # the goal already holds: nothing to move
    EXIT = "exit"  # the exit condition holds


def one_of(column: str, words: type[StrEnum]) -> str:
    """A CHECK constraint's condition: `column` holds one of `words` (or NULL)."""
    return f"{column} IN ({', '.join(repr(w.value) for w in words)})"


class ResponseKind(StrEnum):
    """What a recipient (or the provider, for them) did with a delivery, as the response table records it.

    Provider webhooks map their own event names to these once (delivery/sendgrid_events.py); the in-app
    inbox writes the nudge kinds.
    """

    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCE = "bounce"
    DROPPED = "dropped"
    OPEN = "open"
    CLICK = "click"
    SPAMREPORT = "spamreport"
    UNSUBSCRIBE = "unsubscribe"
    GROUP_UNSUBSCRIBE = "group_unsubscribe"  # an unsubscribe from one group of emails only
    SEEN = "seen"
    CLICKED = "clicked"
    DISMISSED = "dismissed"
    ANSWERED = "answered"  # a survey answered (by email's landing page or in-app)


class SurveyKind(StrEnum):
    """The question a survey step asks: NPS (0 to 10) or CSAT (1 to 5)."""

    NPS = "nps"
    CSAT = "csat"


class RevenueSource(StrEnum):
    """Who wrote a revenue row (PRODUCT.md, Revenue and retention)."""

    IMPORT = "import"  # `engagement import revenue FILE`
    ACCOUNT = "account"  # an account import that changed the account's mrr
    SEGMENT = "segment"  # a Segment group call that changed it
    STRIPE = "stripe"  # a Stripe subscription event
    DEMO = "demo"  # the demo's generated history


class RetentionBy(StrEnum):
    """What `engagement report retention --by` splits every figure by."""

    TOUCH = "touch"  # the account's touch tier (as it is now: tiers have no history)
    PLAN = "plan"  # the plan as of the month's start; for an account not paying then, as of its end
    COHORT = "cohort"  # the account's signup month


class PlanChange(StrEnum):
    """What `engagement plan` says a journey file does to a journey (and to one of its steps)."""

    NEW = "new"  # the engine never ran this journey
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    DRAFT = "draft"  # a draft never runs: nothing it says happens
    ADDED = "added"  # a step
    REMOVED = "removed"
