"""The pure send decision for one queued delivery: send now, hold until later, or drop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engagement import vocab
from engagement.delivery import windows

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Candidate:
    """What the policy needs to know about one queued delivery."""

    channel: str
    due_at: datetime
    enrollment_ended_as: str | None
    has_contact: bool
    contact_erased: bool
    email: str | None
    suppressed: bool
    asked_recently: bool = False  # a survey whose contact was asked the same kind within surveys.min_interval


@dataclass(frozen=True)
class Rules:
    """The rules of the delivery's journey and of the engine."""

    max_lateness: timedelta
    window: windows.Window | None
    zone: ZoneInfo
    weekly_cap: int | None


@dataclass(frozen=True)
class Verdict:
    """`sending`, `queued` (held until `due_at`, for `hold`), or a final status with its reason."""

    status: vocab.DeliveryStatus
    reason: str | None = None
    due_at: datetime | None = None
    hold: vocab.HoldCode | None = None


def judge(candidate: Candidate, rules: Rules, now: datetime, recent_emails: Sequence[datetime]) -> Verdict:
    """Decide one delivery; `recent_emails` are this contact's emails of the last week."""
    if candidate.enrollment_ended_as in (vocab.EnrollmentOutcome.CONVERTED, vocab.EnrollmentOutcome.EXITED):
        return Verdict(
            vocab.DeliveryStatus.CANCELLED, f"enrollment {candidate.enrollment_ended_as} before sending"
        )
    if candidate.has_contact and candidate.contact_erased:
        return Verdict(vocab.DeliveryStatus.DROPPED, "contact erased")
    if candidate.channel == vocab.Channel.EMAIL and not candidate.email:
        return Verdict(vocab.DeliveryStatus.DROPPED, "contact has no email address")
    if candidate.channel == vocab.Channel.EMAIL and candidate.suppressed:
        return Verdict(vocab.DeliveryStatus.SUPPRESSED, "address is on the suppression list")
    if now - candidate.due_at > rules.max_lateness:
        return Verdict(
            vocab.DeliveryStatus.SKIPPED_LATE,
            f"due {candidate.due_at.isoformat()}, more than {rules.max_lateness} ago",
        )
    if candidate.asked_recently:
        return Verdict(
            vocab.DeliveryStatus.SKIPPED_RECENT, "asked the same survey within surveys.min_interval"
        )
    if rules.window is not None and candidate.channel in (vocab.Channel.EMAIL, vocab.Channel.IN_APP):
        opens = windows.next_open(rules.window, now, rules.zone)
        if opens > now:
            return Verdict(
                vocab.DeliveryStatus.QUEUED,
                "held: outside the send window",
                opens,
                vocab.HoldCode.SEND_WINDOW,
            )
    if candidate.channel == vocab.Channel.EMAIL and rules.weekly_cap is not None:
        release = cap_release(recent_emails, rules.weekly_cap, now)
        if release is not None:
            return Verdict(
                vocab.DeliveryStatus.QUEUED,
                "held: weekly email cap reached",
                release,
                vocab.HoldCode.WEEKLY_CAP,
            )
    return Verdict(vocab.DeliveryStatus.SENDING)


def cap_release(recent: Sequence[datetime], cap: int, now: datetime) -> datetime | None:
    """None when another email fits this week; else the moment the oldest counted one leaves it."""
    window = sorted((t for t in recent if now - WEEK < t <= now), reverse=True)
    if len(window) < cap:
        return None
    return window[cap - 1] + WEEK
