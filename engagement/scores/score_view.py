"""Reading scores: one subject's decayed score, what contributed to it, and the bands across the base."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Float, func, literal, select

from engagement.conditions import sql
from engagement.conditions.context import EPOCH
from engagement.config import Settings
from engagement.scores.scoring import context
from engagement.store import schema


@dataclass(frozen=True)
class Standing:
    """A contact's or account's score and band at one moment."""

    subject_id: str
    score: float
    band: str


@dataclass(frozen=True)
class Contribution:
    """One credited fact and what it is worth now."""

    contact_id: str
    kind: str
    detail: str
    at: datetime
    weight: float
    worth: float


def current(conn: Connection, settings: Settings, subject_type: str, subject_id: str, now: datetime) -> float:
    """One contact's or account's score decayed to `now` (0 when nothing was ever credited)."""
    table = schema.contact_scores if subject_type == "contact" else schema.account_scores
    key = table.c.contact_id if subject_type == "contact" else table.c.account_id
    row = conn.execute(select(table.c.value, table.c.as_of_day).where(key == subject_id)).one_or_none()
    return 0.0 if row is None else context(settings, now).decayed(row.value, row.as_of_day)


def standings(
    conn: Connection,
    settings: Settings,
    subject_type: str,
    now: datetime,
    *,
    account_id: str | None = None,
    ids: list[str] | None = None,
    limit: int | None = None,
) -> list[Standing]:
    """Scores and bands, lowest first (erased contacts left out); optionally one account's contacts or some ids."""
    ctx = context(settings, now, subject_type)
    source, subject = sql.subjects_from(subject_type)
    score = sql.score_expr(subject_type, ctx)
    query = select(subject, score.label("score")).select_from(source).order_by(score, subject)
    if subject_type == "contact":
        query = query.where(schema.contacts.c.erased_at.is_(None))
        if account_id is not None:
            query = query.where(schema.contacts.c.account_id == account_id)
    if ids is not None:
        query = query.where(subject.in_(ids))
    if limit is not None:
        query = query.limit(limit)
    return [Standing(sid, float(value), ctx.band(float(value))) for sid, value in conn.execute(query)]


def bands(conn: Connection, settings: Settings, subject_type: str, now: datetime) -> Counter[str]:
    """How many contacts (or accounts) are in each band now."""
    ctx = context(settings, now, subject_type)
    source, _ = sql.subjects_from(subject_type)
    inner = select(sql.case_band(sql.score_expr(subject_type, ctx), ctx).label("band")).select_from(source)
    if subject_type == "contact":
        inner = inner.where(schema.contacts.c.erased_at.is_(None))
    banded = inner.subquery()  # grouped outside: PostgreSQL will not group by an expression with parameters
    query = select(banded.c.band, func.count()).group_by(banded.c.band)
    return Counter({name: int(count) for name, count in conn.execute(query)})


def contributions(
    conn: Connection,
    settings: Settings,
    now: datetime,
    *,
    contact_id: str | None = None,
    account_id: str | None = None,
    limit: int = 10,
) -> list[Contribution]:
    """The credited facts worth most now (by absolute value), for one contact or one account."""
    ctx = context(settings, now)
    credit = schema.score_credits
    worth = credit.c.weight * func.power(
        literal(0.5, Float), (literal(ctx.now_day, Float) - credit.c.at_day) / ctx.half_life_days
    )
    query = select(credit, worth.label("worth")).order_by(func.abs(worth).desc(), credit.c.key).limit(limit)
    if contact_id is not None:
        query = query.where(credit.c.contact_id == contact_id)
    if account_id is not None:
        query = query.where(credit.c.account_id == account_id)
    return [_contribution(row) for row in conn.execute(query).mappings()]


def _contribution(row: Any) -> Contribution:
    at = EPOCH + timedelta(days=row["at_day"])
    return Contribution(row["contact_id"], row["kind"], row["detail"], at, row["weight"], float(row["worth"]))
