"""A contact's and an account's page: who they are, their journeys, messages, answers and timeline.

Each section is one statement (the responses of the listed messages one more), never one per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from engagement.config import Settings
from engagement.health import cards as scorecards
from engagement.health.view import AccountHealth, account_health
from engagement.scores import score_view
from engagement.scores.scoring import context
from engagement.store import revenue_months, schema

LISTED = 100  # messages, events and enrollments shown on a page
CONTACTS_LISTED = 200
c, a, en, d = schema.contacts, schema.accounts, schema.enrollments, schema.deliveries
r, sa_, ev, ms = schema.responses, schema.survey_answers, schema.events, schema.milestones


@dataclass(frozen=True)
class Moment:
    """One line of a timeline."""

    at: datetime
    kind: str  # event | milestone | message | answer
    text: str


@dataclass
class Page:
    """What a contact's or an account's page shows."""

    row: dict[str, Any]
    account: dict[str, Any] | None = None
    score: float = 0.0
    band: str = "red"
    contacts: list[dict[str, Any]] = field(default_factory=list)
    enrollments: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[Moment] = field(default_factory=list)
    mrr: list[tuple[str, float]] = field(default_factory=list)  # (YYYY-MM, MRR) per month
    measures: list[score_view.Contribution] = field(default_factory=list)  # what the score is made of
    more_contacts: int = 0
    health: AccountHealth | None = None  # the account's scorecard (health/view.py), when scorecards exist


def contact(conn: Connection, settings: Settings, contact_id: str, now: datetime) -> Page | None:
    """A contact's page (None when there is no such contact)."""
    row = conn.execute(select(c).where(c.c.id == contact_id)).mappings().first()
    if row is None:
        return None
    account = conn.execute(select(a).where(a.c.id == row["account_id"])).mappings().first()
    score = score_view.current(conn, settings, "contact", contact_id, now)
    page = Page(dict(row), dict(account) if account else None, score, context(settings, now).band(score))
    page.enrollments = _enrollments(conn, en.c.subject_id == contact_id)
    page.messages = _messages(conn, d.c.contact_id == contact_id)
    page.answers = _answers(conn, sa_.c.contact_id == contact_id)
    page.timeline = _timeline(conn, ev.c.contact_id == contact_id, ms.c.contact_id == contact_id, page)
    return page


def account(conn: Connection, settings: Settings, account_id: str, now: datetime) -> Page | None:
    """An account's page (None when there is no such account)."""
    row = conn.execute(select(a).where(a.c.id == account_id)).mappings().first()
    if row is None:
        return None
    score = score_view.current(conn, settings, "account", account_id, now)
    page = Page(dict(row), dict(row), score, context(settings, now, "account").band(score))
    people = conn.execute(
        select(c.c.id, c.c.email, c.c.first_name, c.c.last_name, c.c.role, c.c.erased_at)
        .where(c.c.account_id == account_id)
        .order_by(c.c.id)
        .limit(CONTACTS_LISTED + 1)
    ).mappings()
    page.contacts = [dict(p) for p in people]
    if len(page.contacts) > CONTACTS_LISTED:
        total = conn.execute(select(func.count()).select_from(c).where(c.c.account_id == account_id))
        page.more_contacts = int(total.scalar_one()) - CONTACTS_LISTED
        page.contacts = page.contacts[:CONTACTS_LISTED]
    page.enrollments = _enrollments(conn, en.c.account_id == account_id)
    in_account = select(c.c.id).where(c.c.account_id == account_id).scalar_subquery()
    page.messages = _messages(conn, d.c.contact_id.in_(in_account))
    page.answers = _answers(conn, sa_.c.account_id == account_id)
    page.timeline = _timeline(conn, ev.c.account_id == account_id, ms.c.account_id == account_id, page)
    page.mrr = mrr_history(conn, account_id, now)
    page.measures = score_view.contributions(conn, settings, now, account_id=account_id)
    page.health = account_health(conn, scorecards.load(settings), account_id)
    return page


def _enrollments(conn: Connection, where: Any) -> list[dict[str, Any]]:
    query = select(en).where(where).order_by(en.c.entered_at.desc(), en.c.id.desc()).limit(LISTED)
    return [dict(row) for row in conn.execute(query).mappings()]


def _messages(conn: Connection, where: Any) -> list[dict[str, Any]]:
    """The latest messages with their responses (opened, clicked, bounced…), newest first."""
    query = (
        select(
            d.c.id,
            d.c.journey_id,
            d.c.step_id,
            d.c.channel,
            d.c.contact_id,
            d.c.subject,
            d.c.status,
            d.c.status_reason,
            d.c.due_at,
            d.c.sent_at,
        )
        .where(where)
        .order_by(d.c.due_at.desc(), d.c.id)
        .limit(LISTED)
    )
    messages = [dict(row) for row in conn.execute(query).mappings()]
    ids = [m["id"] for m in messages]
    kinds: dict[str, list[str]] = {}
    if ids:
        got = select(r.c.delivery_id, r.c.kind).where(r.c.delivery_id.in_(ids)).distinct()
        for delivery_id, kind in conn.execute(got):
            kinds.setdefault(delivery_id, []).append(kind)
    for m in messages:
        m["responses"] = sorted(kinds.get(m["id"], []))
    return messages


def _answers(conn: Connection, where: Any) -> list[dict[str, Any]]:
    query = select(sa_).where(where).order_by(sa_.c.answered_at.desc()).limit(LISTED)
    return [dict(row) for row in conn.execute(query).mappings()]


def _timeline(conn: Connection, events: Any, milestones: Any, page: Page) -> list[Moment]:
    """The latest events and milestones (a statement each), with the listed messages and answers."""
    found = [
        Moment(at, "event", name)
        for at, name in conn.execute(
            select(ev.c.timestamp, ev.c.name).where(events).order_by(ev.c.timestamp.desc()).limit(LISTED)
        )
    ]
    found += [
        Moment(at, "milestone", name)
        for at, name in conn.execute(
            select(ms.c.reached_at, ms.c.name)
            .where(milestones)
            .order_by(ms.c.reached_at.desc())
            .limit(LISTED)
        )
    ]
    found += [
        Moment(m["sent_at"] or m["due_at"], "message", f"{m['journey_id']}/{m['step_id']}: {m['status']}")
        for m in page.messages
    ]
    found += [Moment(x["answered_at"], "answer", f"{x['kind']} {x['score']}") for x in page.answers]
    return sorted(found, key=lambda m: m.at, reverse=True)[:LISTED]


def mrr_history(conn: Connection, account_id: str, now: datetime) -> list[tuple[str, float]]:
    """The account's MRR in each month from its first revenue state to now (revenue_month's states)."""
    rm = revenue_months.REVENUE_MONTH
    states = conn.execute(
        select(rm.c.boundary, rm.c.mrr).where(rm.c.account_id == account_id).order_by(rm.c.boundary)
    ).all()
    if not states:
        return []
    last = now.year * 12 + now.month - 1
    found, mrr, at = [], 0.0, dict(states)
    for month in range(int(states[0][0]), max(last, int(states[-1][0])) + 1):
        mrr = float(at.get(month, mrr))
        found.append((f"{month // 12:04d}-{month % 12 + 1:02d}", mrr))
    return found
