"""The health of one account in plain Python: the SQL refresh's twin (a test keeps them in agreement)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select

from engagement.conditions import pure
from engagement.conditions.context import day_number
from engagement.config import Settings
from engagement.health import cards as scorecards
from engagement.health import spec
from engagement.scores import activity, scoring, survey_metrics
from engagement.store import schema


@dataclass
class AccountFacts:
    """Everything a scorecard reads for one account."""

    account: Mapping[str, Any]
    contacts: Sequence[Mapping[str, Any]] = ()  # not erased: id, created_at
    events: Sequence[tuple[str, str | None, str, datetime, str]] = ()  # contact, account, name, at, source
    milestones: Mapping[str, datetime] = field(default_factory=dict)  # the account's
    account_score: tuple[float, float] | None = None  # (value, as_of_day)
    answers: Sequence[tuple[str, str, int, datetime, str]] = ()  # contact, kind, score, at, delivery
    revenue: Sequence[tuple[datetime, float]] = ()  # (effective_at, mrr)


@dataclass(frozen=True)
class Health:
    """One account's scorecard, score (None: unknown) and band, and each measure's (value, points, weight)."""

    scorecard: str | None
    score: float | None
    band: str
    measures: dict[str, tuple[float | None, float | None, float]]


def choose(
    cards: scorecards.Cards, facts: AccountFacts, settings: Settings, now: datetime
) -> scorecards.Scorecard | None:
    """The first scorecard by `order` whose `applies_to` holds for the account."""
    ctx = scoring.context(settings, now, "account")
    own = pure.Facts(
        account=facts.account,
        milestones=facts.milestones,
        events=[(name, at) for _, account, name, at, _ in facts.events if account == facts.account["id"]],
        account_score=facts.account_score,
    )
    for card in cards.cards:
        if card.applies_to is None or pure.evaluate(card.applies_to, own, ctx):
            return card
    return None


def health(cards: scorecards.Cards, facts: AccountFacts, settings: Settings, now: datetime) -> Health:
    """The account's health at `now`, as `compute.refresh` stores it."""
    card = choose(cards, facts, settings, now)
    if card is None:
        return Health(None, None, "unknown", {})
    measures: dict[str, tuple[float | None, float | None, float]] = {}
    for measure in card.spec.measures:
        value = metric_value(measure.metric, facts, settings, now)
        measures[measure.id] = (value, points(measure, value), measure.weight)
    counted = [(p, w) for _, p, w in measures.values() if p is not None]
    if not counted:
        return Health(card.id, None, "unknown", measures)
    score = math.floor(sum(p * w for p, w in counted) / sum(w for _, w in counted) * 100.0 + 0.5) / 100.0
    bands = card.spec.bands
    band = "green" if score >= bands.green else "yellow" if score >= bands.yellow else "red"
    return Health(card.id, score, band, measures)


def points(measure: spec.Measure, value: float | None) -> float | None:
    """The measure's points for a value: piecewise linear, flat beyond the ends; None when skipped."""
    if value is None:
        return None if measure.missing == "skip" else float(measure.missing)
    pairs = measure.points
    if value <= pairs[0][0]:
        return pairs[0][1]
    for (xa, ya), (xb, yb) in itertools.pairwise(pairs):
        if value <= xb:
            return ya + (value - xa) * ((yb - ya) / (xb - xa))
    return pairs[-1][1]


def metric_value(metric: spec.Metric, facts: AccountFacts, settings: Settings, now: datetime) -> float | None:
    """The metric's value for the account (None: no value), as health/metrics.py computes it."""
    kind, params = metric.kind, metric.params
    account_id = facts.account["id"]
    if kind in ("active_days", "active_share"):
        if not facts.contacts:
            return None
        start = now - params.within
        days: dict[str, set[int]] = {c["id"]: set() for c in facts.contacts}
        for contact, _, name, at, source in facts.events:
            if contact not in days or not start < at <= now or source == activity.ENGINE_SOURCE:
                continue
            if not activity.counts_as_activity(name, settings.events.not_activity):
                continue
            if getattr(params, "events", None) and name not in params.events:
                continue
            days[contact].add(math.floor(day_number(at)))
        per = [float(len(d)) if kind == "active_days" else (1.0 if d else 0.0) for d in days.values()]
        return sum(per) / len(per)
    if kind == "event_count":
        start = now - params.within
        hits = [
            1
            for _, a, name, at, _ in facts.events
            if a == account_id and name == params.event and start < at <= now
        ]
        return float(len(hits))
    if kind == "milestones":
        return float(sum(1 for n, at in facts.milestones.items() if n in params.names and at <= now))
    if kind == "engagement":
        if not facts.contacts:
            return None
        ctx = scoring.context(settings, now, "account")
        stored = 0.0 if facts.account_score is None else ctx.decayed(*facts.account_score)
        return stored / len(facts.contacts)
    if kind in ("nps", "csat"):
        return _survey(kind, params.within, facts, now)
    if kind == "days_since":
        return _days_since(params.field, facts, now)
    if kind == "mrr_change":
        then, current = _mrr_at(facts, now - params.within), _mrr_at(facts, now)
        return None if then <= 0 else (current - then) / then
    value: Any = facts.account.get("traits") or {}
    for part in params.path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _survey(kind: str, within: timedelta, facts: AccountFacts, now: datetime) -> float | None:
    latest: dict[str, tuple[datetime, str, int]] = {}
    for contact, k, score, at, delivery in facts.answers:
        if k == kind and now - within < at <= now:
            latest[contact] = max(latest.get(contact, (at, delivery, score)), (at, delivery, score))
    scores = [s for _, _, s in latest.values()]
    if not scores:
        return None
    if kind == "csat":
        return sum(scores) / len(scores)
    promoters = sum(1 for s in scores if s >= survey_metrics.PROMOTER)
    detractors = sum(1 for s in scores if s <= survey_metrics.DETRACTOR)
    return (promoters - detractors) * 100.0 / len(scores)


def _days_since(field_name: str, facts: AccountFacts, now: datetime) -> float | None:
    if field_name == "account.renewal_date":
        renewal = facts.account.get("renewal_date")
        return None if renewal is None else float((now.date() - renewal).days)
    if field_name == "account.signed_up_at":
        at = facts.account.get("signed_up_at")
    else:
        created = [c["created_at"] for c in facts.contacts if c.get("created_at") is not None]
        at = max(created) if created else None
    return None if at is None else float(math.floor(day_number(now) - day_number(at)))


def _mrr_at(facts: AccountFacts, instant: datetime) -> float:
    rows = [(at, mrr) for at, mrr in facts.revenue if at <= instant]
    return max(rows)[1] if rows else 0.0


def load_facts(conn: Connection, account_id: str) -> AccountFacts | None:
    """Read one account's facts (None when it does not exist)."""
    a = schema.accounts
    account = conn.execute(select(a).where(a.c.id == account_id)).mappings().first()
    if account is None:
        return None
    c, e, m = schema.contacts.c, schema.events.c, schema.account_milestones.c
    contacts = [
        dict(row)
        for row in conn.execute(
            select(c.id, c.created_at).where(c.account_id == account_id, c.erased_at.is_(None))
        ).mappings()
    ]
    ids = [row["id"] for row in contacts]
    events = conn.execute(
        select(e.contact_id, e.account_id, e.name, e.timestamp, e.source).where(
            or_(e.account_id == account_id, e.contact_id.in_(ids))
        )
    )
    s = schema.account_scores.c
    stored = conn.execute(select(s.value, s.as_of_day).where(s.account_id == account_id)).first()
    sa = schema.survey_answers.c
    answers = conn.execute(
        select(sa.contact_id, sa.kind, sa.score, sa.answered_at, sa.delivery_id).where(
            sa.account_id == account_id
        )
    )
    r = schema.table(schema.Revenue).c
    revenue = conn.execute(select(r.effective_at, r.mrr).where(r.account_id == account_id))
    return AccountFacts(
        account=dict(account),
        contacts=contacts,
        events=[tuple(row) for row in events],
        milestones={
            n: t for n, t in conn.execute(select(m.name, m.reached_at).where(m.account_id == account_id))
        },
        account_score=None if stored is None else (float(stored[0]), float(stored[1])),
        answers=[(ct, k, int(sc), at, d) for ct, k, sc, at, d in answers],
        revenue=[(at, float(mrr)) for at, mrr in revenue],
    )
