"""Evaluate a condition for one subject in plain Python (the SQL compiler's twin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from engagement.conditions import ast
from engagement.conditions.context import EvalContext
from engagement.store import schema


@dataclass
class Facts:
    """Everything a condition can look at for one subject."""

    account: Mapping[str, Any]
    contact: Mapping[str, Any] | None = None
    milestones: Mapping[str, datetime] = field(default_factory=dict)
    events: Sequence[tuple[str, datetime]] = ()
    score: tuple[float, float] | None = None  # (value, as_of_day) of the contact
    account_score: tuple[float, float] | None = None
    answers: Sequence[
        tuple[str, int, datetime, str]
    ] = ()  # survey answers: (kind, score, answered_at, delivery)
    health: tuple[float | None, str] | None = None  # the account's stored scorecard (score, band)
    health_snapshots: Mapping[date, float | None] = field(default_factory=dict)  # the account's, by day


def evaluate(cond: ast.Condition, facts: Facts, ctx: EvalContext) -> bool:
    """True when the condition holds for this subject at `ctx.now`."""
    if isinstance(cond, ast.All):
        return all(evaluate(c, facts, ctx) for c in cond.items)
    if isinstance(cond, ast.AnyOf):
        return any(evaluate(c, facts, ctx) for c in cond.items)
    if isinstance(cond, ast.Not):
        return not evaluate(cond.item, facts, ctx)
    if isinstance(cond, ast.Attr):
        return _attr(cond, facts)
    if isinstance(cond, ast.Milestone):
        reached = facts.milestones.get(cond.name)
        if reached is None or reached > ctx.now:
            return False
        start = None if cond.within is None else ctx.window_start(cond.within)
        return start is None or reached > start
    if isinstance(cond, ast.EventCount):
        start = None if cond.within is None else ctx.window_start(cond.within)
        count = sum(
            1
            for name, at in facts.events
            if name == cond.event and at <= ctx.now and (start is None or at > start)
        )
        return _bounds(count, cond.bounds)
    if isinstance(cond, ast.Days):
        return _days(cond, facts, ctx)
    if isinstance(cond, ast.Score):
        return _bounds(_score(cond.scope, facts, ctx), cond.bounds)
    if isinstance(cond, ast.Health) and ctx.scorecards:
        return facts.health is not None and facts.health[1] == cond.band
    if isinstance(cond, ast.Health):
        return ctx.band(_score(cond.scope, facts, ctx)) == cond.band
    if isinstance(cond, ast.HealthScore):
        score = None if facts.health is None else facts.health[0]
        return score is not None and _bounds(score, cond.bounds)
    if isinstance(cond, ast.HealthChange):
        return _health_change(cond, facts, ctx)
    if isinstance(cond, ast.Survey):
        return _survey(cond, facts, ctx)
    raise TypeError(f"unknown condition node {cond!r}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _lookup(cond: ast.Attr, facts: Facts) -> Any:
    row = facts.contact if cond.scope == "contact" else facts.account
    if row is None:
        return None
    value: Any = row.get(cond.path[0])
    for part in cond.path[1:]:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _eq(actual: Any, expected: Any, is_trait: bool) -> bool:
    if actual is None:
        return False
    if is_trait and _kind(actual) != _kind(expected):
        return False
    return bool(actual == expected)


def _attr(cond: ast.Attr, facts: Facts) -> bool:
    actual = _lookup(cond, facts)
    op, value = cond.op, cond.value
    if op == "exists":
        return (actual is not None) == bool(value)
    if op == "eq":
        return _eq(actual, value, cond.is_trait)
    if op == "ne":
        return not _eq(actual, value, cond.is_trait)
    if op in ("in", "not_in"):
        hit = any(_eq(actual, v, cond.is_trait) for v in value)
        return hit if op == "in" else not hit
    if op == "contains":
        return isinstance(actual, str) and value in actual
    if actual is None or (cond.is_trait and _kind(actual) != _kind(value)):
        return False
    return ast.check_bound(op, actual, value)


def _bounds(actual: float, bounds: tuple[ast.Bound, ...]) -> bool:
    return all(ast.check_bound(op, actual, number) for op, number in bounds)


def _days(cond: ast.Days, facts: Facts, ctx: EvalContext) -> bool:
    whole = _whole_days(cond, facts, ctx)
    return whole is not None and _bounds(whole, cond.bounds)


def _whole_days(cond: ast.Days, facts: Facts, ctx: EvalContext) -> int | None:
    scope, _, name = cond.field.partition(".")
    row = facts.contact if scope == "contact" else facts.account
    value = row.get(name) if row is not None else None
    if value is None:
        return None
    if isinstance(value, datetime):
        delta = ctx.now - value if cond.direction == "since" else value - ctx.now
        return delta // timedelta(days=1)
    assert isinstance(value, date)
    today = ctx.today
    return (today - value).days if cond.direction == "since" else (value - today).days


def _survey(cond: ast.Survey, facts: Facts, ctx: EvalContext) -> bool:
    latest = _latest_answer(cond, facts, ctx)
    return latest is not None and _bounds(latest, cond.bounds)


def _latest_answer(cond: ast.Survey, facts: Facts, ctx: EvalContext) -> int | None:
    start = None if cond.within is None else ctx.window_start(cond.within)
    answers = [
        (at, delivery, score)
        for kind, score, at, delivery in facts.answers
        if kind == cond.kind and at <= ctx.now and (start is None or at > start)
    ]
    return max(answers)[2] if answers else None


def reading(cond: ast.Condition, facts: Facts, ctx: EvalContext) -> Any:
    """What a leaf condition reads for this subject now (None: nothing there), for explanations."""
    if isinstance(cond, ast.Attr):
        return _lookup(cond, facts)
    if isinstance(cond, ast.Milestone):
        reached = facts.milestones.get(cond.name)
        return reached if reached is not None and reached <= ctx.now else None
    if isinstance(cond, ast.EventCount):
        start = None if cond.within is None else ctx.window_start(cond.within)
        return sum(
            1
            for name, at in facts.events
            if name == cond.event and at <= ctx.now and (start is None or at > start)
        )
    if isinstance(cond, ast.Days):
        return _whole_days(cond, facts, ctx)
    if isinstance(cond, ast.Score):
        return round(_score(cond.scope, facts, ctx), 2)
    if isinstance(cond, ast.Health) and ctx.scorecards:
        if facts.health is None:
            return None
        stored, band = facts.health
        return band if stored is None else f"{band} ({stored:.1f})"
    if isinstance(cond, ast.Health):
        score = _score(cond.scope, facts, ctx)
        return f"{ctx.band(score)} ({score:.1f})"
    if isinstance(cond, ast.HealthScore):
        return None if facts.health is None else facts.health[0]
    if isinstance(cond, ast.HealthChange):
        return _change(cond, facts, ctx)
    if isinstance(cond, ast.Survey):
        return _latest_answer(cond, facts, ctx)
    raise TypeError(f"not a leaf condition: {cond!r}")


def _change(cond: ast.HealthChange, facts: Facts, ctx: EvalContext) -> float | None:
    """The scorecard score now minus the daily snapshot `within` ago (None: either is missing)."""
    now_score = None if facts.health is None else facts.health[0]
    try:
        then_day = ctx.today - timedelta(days=cond.within.days)
    except OverflowError:
        return None
    then = facts.health_snapshots.get(then_day)
    return None if now_score is None or then is None else now_score - then


def _health_change(cond: ast.HealthChange, facts: Facts, ctx: EvalContext) -> bool:
    change = _change(cond, facts, ctx)
    return change is not None and _bounds(change, cond.bounds)


def _score(scope: str, facts: Facts, ctx: EvalContext) -> float:
    stored = facts.account_score if scope == "account" else facts.score
    return 0.0 if stored is None else ctx.decayed(*stored)


def load_facts(conn: Connection, audience: str, subject_id: str) -> Facts | None:
    """Read one subject's facts from the database (None when it does not exist)."""
    if audience == "account":
        account = (
            conn.execute(select(schema.accounts).where(schema.accounts.c.id == subject_id)).mappings().first()
        )
        if account is None:
            return None
        miles = conn.execute(
            select(schema.account_milestones.c.name, schema.account_milestones.c.reached_at).where(
                schema.account_milestones.c.account_id == subject_id
            )
        )
        evs = conn.execute(
            select(schema.events.c.name, schema.events.c.timestamp).where(
                schema.events.c.account_id == subject_id
            )
        )
        return Facts(
            account=dict(account),
            milestones={n: t for n, t in miles},
            events=[(n, t) for n, t in evs],
            account_score=_stored(
                conn, schema.account_scores, schema.account_scores.c.account_id, subject_id
            ),
            **_health(conn, subject_id),
        )
    contact = (
        conn.execute(select(schema.contacts).where(schema.contacts.c.id == subject_id)).mappings().first()
    )
    if contact is None:
        return None
    account = (
        conn.execute(select(schema.accounts).where(schema.accounts.c.id == contact["account_id"]))
        .mappings()
        .first()
    )
    miles = conn.execute(
        select(schema.milestones.c.name, schema.milestones.c.reached_at).where(
            schema.milestones.c.contact_id == subject_id
        )
    )
    evs = conn.execute(
        select(schema.events.c.name, schema.events.c.timestamp).where(
            schema.events.c.contact_id == subject_id
        )
    )
    a = schema.survey_answers.c
    answers = conn.execute(
        select(a.kind, a.score, a.answered_at, a.delivery_id).where(a.contact_id == subject_id)
    )
    return Facts(
        account=dict(account or {}),
        contact=dict(contact),
        answers=[(k, int(s), t, d) for k, s, t, d in answers],
        milestones={n: t for n, t in miles},
        events=[(n, t) for n, t in evs],
        score=_stored(conn, schema.contact_scores, schema.contact_scores.c.contact_id, subject_id),
        account_score=_stored(
            conn, schema.account_scores, schema.account_scores.c.account_id, contact["account_id"]
        ),
        **_health(conn, contact["account_id"]),
    )


def _health(conn: Connection, account_id: str) -> dict[str, Any]:
    """The account's stored scorecard health and its daily snapshots (Facts fields)."""
    h, s = schema.health_scores.c, schema.health_snapshots.c
    row = conn.execute(select(h.score, h.band).where(h.account_id == account_id)).first()
    snaps = conn.execute(select(s.day, s.score).where(s.account_id == account_id))
    return {
        "health": None if row is None else (None if row[0] is None else float(row[0]), str(row[1])),
        "health_snapshots": {d: None if v is None else float(v) for d, v in snaps},
    }


def _stored(conn: Connection, table: Any, key: Any, value: str) -> tuple[float, float] | None:
    row = conn.execute(select(table.c.value, table.c.as_of_day).where(key == value)).first()
    return None if row is None else (float(row[0]), float(row[1]))
