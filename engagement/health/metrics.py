"""Each scorecard metric as one set-based SELECT (account_id, value) over every account at once.

An account without a row has no value for the metric, except where the metric counts something (event
counts and milestones): there an account without a row counts 0 (`ZERO_WHEN_ABSENT`). Metrics averaged
over an account's contacts have no value for an account without contacts.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, Select, case, cast, func, literal, select
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from engagement.conditions import sql as condition_sql
from engagement.conditions.context import EPOCH, day_number
from engagement.config import Settings
from engagement.health import spec
from engagement.reports import journey_retention
from engagement.scores import activity, scoring, survey_metrics
from engagement.store import functions, schema

ZERO_WHEN_ABSENT = ("event_count", "milestones")
e, c, acc = schema.events.c, schema.contacts.c, schema.accounts.c


def select_for(metric: spec.Metric, settings: Settings, now: datetime) -> Select[Any]:
    """SELECT account_id, value for every account the metric has a value for."""
    params = metric.params
    kind = metric.kind
    if kind in ("active_days", "active_share"):
        return _per_contact(kind, params, settings, now)
    if kind == "event_count":
        return (
            select(e.account_id, cast(func.count(), Float).label("value"))
            .where(
                e.name == params.event, *_window(e.timestamp, now, params.within), e.account_id.is_not(None)
            )
            .group_by(e.account_id)
        )
    if kind == "milestones":
        m = schema.account_milestones.c
        return (
            select(m.account_id, cast(func.count(), Float).label("value"))
            .where(m.name.in_(params.names), m.reached_at <= now)
            .group_by(m.account_id)
        )
    if kind == "engagement":
        return _engagement(settings, now)
    if kind == "nps":
        q = survey_metrics.account_nps(now, params.within).subquery()
        return select(q.c.account_id, q.c.nps.label("value"))
    if kind == "csat":
        q = survey_metrics.account_csat(now, params.within).subquery()
        return select(q.c.account_id, q.c.csat.label("value"))
    if kind == "days_since":
        return _days_since(params.field, now)
    if kind == "mrr_change":
        return _mrr_change(params.within, now)
    value = condition_sql.trait_number(schema.accounts.c.traits, tuple(params.path.split(".")))
    return select(acc.id.label("account_id"), cast(value, Float).label("value")).where(value.is_not(None))


def _window(column: Any, now: datetime, within: timedelta) -> list[ColumnElement[bool]]:
    return [column > now - within, column <= now]


class _UtcDay(FunctionElement[Any]):
    """A stored timestamp's UTC calendar day, cheaply: SQLite keeps 'YYYY-MM-DD HH:MM:SS…' UTC text."""

    inherit_cache = True
    name = "utc_day"


functions.render(
    _UtcDay,
    sqlite=lambda _, args: f"substr({args[0]}, 1, 10)",
    postgresql=lambda _, args: f"(({args[0]}) AT TIME ZONE 'UTC')::date",
)


def key(metric: spec.Metric) -> str:
    """Metrics with the same key are one SELECT: active_days and active_share of one window share theirs."""
    if metric.kind in ("active_days", "active_share"):
        events = getattr(metric.params, "events", None)
        return json.dumps(["per_contact", metric.params.within.total_seconds(), sorted(events or [])])
    return metric.model_dump_json()


def column(metric: spec.Metric) -> str:
    """The column of the metric's SELECT that holds its value."""
    return "share" if metric.kind == "active_share" else "value"


def _per_contact(kind: str, params: Any, settings: Settings, now: datetime) -> Select[Any]:
    """Each contact's distinct UTC days with a product event in the window, averaged (`value`), and the
    share of contacts with at least one (`share`): one pass over the window's events for both."""
    day = _UtcDay(e.timestamp)
    used = [
        *_window(e.timestamp, now, params.within),
        e.source != activity.ENGINE_SOURCE,
        activity.is_activity(e.name, settings.events.not_activity),
    ]
    events = getattr(params, "events", None)
    if events:
        used.append(e.name.in_(events))
    days = (
        select(e.contact_id, func.count(func.distinct(day)).label("days")).where(*used).group_by(e.contact_id)
    ).subquery("days")
    n = func.coalesce(days.c.days, 0)
    share = func.avg(case((n > 0, 1.0), else_=0.0))
    return (
        select(c.account_id, func.avg(cast(n, Float)).label("value"), share.label("share"))
        .select_from(schema.contacts.outerjoin(days, days.c.contact_id == c.id))
        .where(c.erased_at.is_(None))
        .group_by(c.account_id)
    )


def contacts_per_account() -> Any:
    """Subquery: account_id, contacts (not erased)."""
    return (
        select(c.account_id, func.count().label("contacts"))
        .where(c.erased_at.is_(None))
        .group_by(c.account_id)
        .subquery("people")
    )


def _engagement(settings: Settings, now: datetime) -> Select[Any]:
    s = schema.account_scores.c
    people = contacts_per_account()
    ref = scoring.context(settings, now, "account")
    factor = func.power(literal(0.5, Float), (literal(ref.now_day, Float) - s.as_of_day) / ref.half_life_days)
    return select(
        people.c.account_id, (func.coalesce(s.value * factor, 0.0) / people.c.contacts).label("value")
    ).select_from(people.outerjoin(schema.account_scores, s.account_id == people.c.account_id))


def _days_since(field: str, now: datetime) -> Select[Any]:
    """Whole days since the field (negative before it); contact.created_at is the account's newest contact."""
    now_day = literal(day_number(now), Float)
    if field == "account.renewal_date":
        today = literal(float((now.date() - EPOCH.date()).days), Float)
        value = today - scoring.DayNumber(acc.renewal_date)
        return select(acc.id.label("account_id"), cast(func.round(value), Float).label("value")).where(
            acc.renewal_date.is_not(None)
        )
    if field == "account.signed_up_at":
        value = cast(func.floor(now_day - scoring.DayNumber(acc.signed_up_at)), Float)
        return select(acc.id.label("account_id"), value.label("value")).where(acc.signed_up_at.is_not(None))
    newest = (
        select(c.account_id, func.max(c.created_at).label("created_at"))
        .where(c.erased_at.is_(None), c.created_at.is_not(None))
        .group_by(c.account_id)
        .subquery("newest")
    )
    value = cast(func.floor(now_day - scoring.DayNumber(newest.c.created_at)), Float)
    return select(newest.c.account_id, value.label("value"))


def _mrr_change(within: timedelta, now: datetime) -> Select[Any]:
    """(MRR now - MRR `within` ago) / MRR then, for accounts that paid then."""
    then = journey_retention.mrr_at(acc.id, now - within)
    current = journey_retention.mrr_at(acc.id, now)
    inner = select(acc.id.label("account_id"), then.label("then"), current.label("now")).subquery("mrr")
    return select(inner.c.account_id, ((inner.c.now - inner.c.then) / inner.c.then).label("value")).where(
        inner.c.then > 0
    )
