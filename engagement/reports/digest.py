"""The weekly digest: each journey's headline numbers for the last 7 days, mailed to marketing.

The scheduler may call `send_digest` as often as it likes (daily is plenty): it sends once per
ISO week, on the first call on or after `reports.digest_weekday`, and the `digest_send` table
remembers who got which week's, so restarts never send twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from html import escape

from sqlalchemy import select

from engagement.clock import Clock
from engagement.config import Settings
from engagement.delivery.message import OutboundEmail
from engagement.reports import build, journey_retention, queries
from engagement.reports.model import Report
from engagement.reports.period import Period
from engagement.reports.tables import display
from engagement.store import schema
from engagement.store.database import Database

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HEADLINES = (
    ("entered", "entered"),
    ("sent", "sent"),
    ("unique opens", "unique_opens"),
    ("unique clicks", "unique_clicks"),
    ("nudges clicked", "nudges_clicked"),
    ("unsubscribes", "unsubscribes"),
    ("conversions", "conversions"),
)


def week_of(now: datetime) -> str:
    """The ISO week label, e.g. 2026-W47."""
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


def send_digest(settings: Settings, db: Database, clock: Clock, *, force: bool = False) -> int:
    """Send this week's digest to the recipients who have not had it; return how many were sent.

    Without `force` nothing is sent before `reports.digest_weekday`; with it (`engagement report
    --digest`) every recipient gets it now.
    """
    recipients = list(dict.fromkeys(settings.reports.digest_recipients))
    now = clock.now()
    if not recipients or (not force and now.weekday() < WEEKDAYS.index(settings.reports.digest_weekday)):
        return 0
    week = week_of(now)
    d = schema.digest_sends
    with db.begin() as conn:
        done = set(conn.execute(select(d.c.recipient).where(d.c.week == week)).scalars())
    todo = recipients if force else [r for r in recipients if r not in done]
    if not todo:
        return 0
    from engagement.engine import email_provider  # the composition root builds the configured provider

    report = build.for_settings(settings, db, Period(now - timedelta(days=7), now), now)
    retention_to_date(settings, db, report, now)
    provider = email_provider(settings)
    for recipient in todo:
        provider.send(compose(report, settings, recipient, week))
        with db.begin() as conn:
            db.upsert(
                conn, d, [{"week": week, "recipient": recipient, "sent_at": now}], ["week", "recipient"]
            )
    return len(todo)


def retention_to_date(settings: Settings, db: Database, report: Report, now: datetime) -> None:
    """Judge each journey of the week's report on retention over all its entries so far, not the week's.

    A week's entries are all younger than `reports.retention_window`, so their verdict would always be
    "pending"; every entry since the first recorded activity gives the verdict as it stands now.
    """
    ids = [j.id for j in report.journeys]
    with db.begin() as conn:
        first = queries.first_activity(conn)
        if first is None or not ids or first >= now:
            return
        kept = journey_retention.retention(
            conn,
            Period(first, now),
            ids,
            settings.reports.retention_window,
            now,
            settings.reports.min_sample,
        )
    for j in report.journeys:
        j.retention = kept[j.id]


def compose(
    report: Report, settings: Settings, recipient: str, week: str, month_retention: str | None = None
) -> OutboundEmail:
    """The digest email for one recipient: a plain-text and an HTML table of each journey's week.

    `month_retention` is the month's GRR/NRR line from the monthly retention report, shown first when given.
    """
    link = settings.server.public_url.rstrip("/") + "/reports"
    subject = f"Engagement digest {week}: {report.period.label()}"
    text_lines = [subject, ""]
    if month_retention:
        text_lines += [month_retention, ""]
    rows = []
    for j in report.journeys:
        t = j.totals
        numbers = [(label, getattr(t, field)) for label, field in HEADLINES]
        verdict = j.lift.verdict if j.lift is not None else "no goal"
        kept = j.retention.verdict if j.retention is not None else "no entries yet"
        days = f"{j.retention.window_days:g}d" if j.retention is not None else ""
        rate = display("conversion_rate", j.conversion_rate)
        text_lines.append(f"{j.name} ({j.id})")
        text_lines.append("  " + ", ".join(f"{label} {value}" for label, value in numbers) + f", rate {rate}")
        text_lines.append(f"  lift: {verdict}")
        text_lines.append(f"  retention ({days} after entry, every entry so far): {kept}")
        cells = "".join(f"<td style='padding:4px 8px;text-align:right'>{v}</td>" for _, v in numbers)
        rows.append(
            f"<tr><td style='padding:4px 8px'>{escape(j.name)}</td>{cells}"
            f"<td style='padding:4px 8px;text-align:right'>{escape(rate)}</td>"
            f"<td style='padding:4px 8px'>{escape(verdict)}</td>"
            f"<td style='padding:4px 8px'>{escape(kept)}</td></tr>"
        )
    text_lines += ["", f"The dashboard: {link}", "", settings.company.name]
    head = "".join(
        f"<th style='padding:4px 8px'>{escape(h)}</th>"
        for h in ("journey", *(label for label, _ in HEADLINES), "rate", "lift", "retention (entries so far)")
    )
    month = f"<p><strong>{escape(month_retention)}</strong></p>" if month_retention else ""
    html = (
        f"<html><body style='font-family:system-ui,sans-serif'><h2>{escape(subject)}</h2>{month}"
        f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}</table>"
        f"<p><a href='{escape(link)}'>Open the dashboard</a></p>"
        f"<p style='color:#6b7280'>{escape(settings.company.name)}</p></body></html>"
    )
    return OutboundEmail(
        delivery_id=str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"engagement-digest:{week}:{recipient}:{report.generated_at}")
        ),
        to=recipient,
        to_name="",
        sender=settings.email.from_,
        reply_to=settings.email.reply_to,
        subject=subject,
        html=html,
        text="\n".join(text_lines) + "\n",
        sent_at=report.generated_at,
        categories=("digest",),
        custom_args={"digest_week": week},
    )
