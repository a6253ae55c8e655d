"""Survey figures per survey step and touch tier, and the list of every answer: set-based SQL.

NPS counts people, not answers: each contact's latest answer to the step in the period (ties on
`answered_at` go to the greater delivery id, so the pick never depends on the plan). Promoters
answer 9-10, passives 7-8, detractors 0-6; NPS = % promoters - % detractors, on -100..100, with a
95% interval by the adjusted Wald method (`stats.nps_interval`). CSAT shows the mean score (1-5)
and the share of people who answered 4 or 5.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from engagement import vocab
from engagement.reports import stats
from engagement.reports.model import SurveyFigures
from engagement.reports.period import Period
from engagement.store import schema

ALL_TIERS = "(all tiers)"
NO_TIER = "unknown"  # a contact or account no longer on record (erased, say)
PROMOTER_FROM, DETRACTOR_UP_TO, SATISFIED_FROM = 9, 6, 4


def survey_steps(steps: Iterable[Any]) -> list[tuple[str, str]]:
    """(step id, kind) of every survey step of a journey file's steps, inside branches too."""
    found: list[tuple[str, str]] = []
    for step in steps:
        survey = getattr(step, "survey", None)
        if survey is not None and getattr(step, "id", None):
            found.append((step.id, str(survey.kind)))
        branch = getattr(step, "branch", None)
        if branch is not None:
            found += survey_steps([*branch.then, *branch.else_])
    return found


def _pairs(column_journey: Any, column_step: Any, keys: Sequence[tuple[str, str]]) -> Any:
    return or_(*(and_(column_journey == j, column_step == s) for j, s in keys))


def answered_steps(conn: Connection, journeys: Sequence[str] | None) -> list[tuple[str, str, str]]:
    """(journey, step, kind) of every step that has an answer."""
    s = schema.survey_answers
    stmt = select(s.c.journey_id, s.c.step_id, s.c.kind).distinct()
    if journeys is not None:
        stmt = stmt.where(s.c.journey_id.in_(journeys))
    return [(j, step, kind) for j, step, kind in conn.execute(stmt)]


def _sent(conn: Connection, period: Period, keys: Sequence[tuple[str, str]]) -> list[Any]:
    """Per (journey, step, touch tier): survey messages sent in the period, and how many have an answer."""
    d, c, a, s = schema.deliveries, schema.contacts, schema.accounts, schema.survey_answers
    touch = func.coalesce(a.c.touch, NO_TIER).label("touch")
    stmt = (
        select(
            d.c.journey_id,
            d.c.step_id,
            touch,
            func.count().label("sent"),
            func.count(s.c.delivery_id).label("answered"),
        )
        .select_from(
            d.outerjoin(c, c.c.id == d.c.contact_id)
            .outerjoin(a, a.c.id == c.c.account_id)
            .outerjoin(s, s.c.delivery_id == d.c.id)
        )
        .where(
            _pairs(d.c.journey_id, d.c.step_id, keys), d.c.sent_at >= period.start, d.c.sent_at < period.end
        )
        .group_by(d.c.journey_id, d.c.step_id, touch)
    )
    return list(conn.execute(stmt))


def _latest(conn: Connection, period: Period, keys: Sequence[tuple[str, str]]) -> list[Any]:
    """Per (journey, step, kind, touch tier): people by their latest answer to the step in the period."""
    s, a = schema.survey_answers, schema.accounts
    rank = func.row_number().over(
        partition_by=(s.c.journey_id, s.c.step_id, s.c.kind, s.c.contact_id),
        order_by=(s.c.answered_at.desc(), s.c.delivery_id.desc()),
    )
    ranked = (
        select(s.c.journey_id, s.c.step_id, s.c.kind, s.c.account_id, s.c.score, rank.label("rank"))
        .where(
            _pairs(s.c.journey_id, s.c.step_id, keys),
            s.c.answered_at >= period.start,
            s.c.answered_at < period.end,
        )
        .subquery("ranked")
    )
    r = ranked.c
    touch = func.coalesce(a.c.touch, NO_TIER).label("touch")

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    stmt = (
        select(
            r.journey_id,
            r.step_id,
            r.kind,
            touch,
            func.count().label("respondents"),
            count(r.score >= PROMOTER_FROM).label("promoters"),
            count(and_(r.score > DETRACTOR_UP_TO, r.score < PROMOTER_FROM)).label("passives"),
            count(r.score <= DETRACTOR_UP_TO).label("detractors"),
            func.coalesce(func.sum(r.score), 0).label("score_sum"),
            count(r.score >= SATISFIED_FROM).label("satisfied"),
        )
        .select_from(ranked.outerjoin(a, a.c.id == r.account_id))
        .where(r.rank == 1)
        .group_by(r.journey_id, r.step_id, r.kind, touch)
    )
    return list(conn.execute(stmt))


def _finish(f: SurveyFigures) -> SurveyFigures:
    """The derived figures of one row (None where there are no answers)."""
    n = f.respondents
    if n and f.kind == vocab.SurveyKind.NPS:
        f.nps = 100 * (f.promoters - f.detractors) / n
        interval = stats.nps_interval(f.promoters, f.detractors, n)
        if interval is not None:
            f.nps_low, f.nps_high = interval.low, interval.high
    if n and f.kind == vocab.SurveyKind.CSAT:
        f.csat_mean, f.csat_satisfied = f.score_sum / n, f.satisfied / n
    return f


def figures(
    conn: Connection,
    period: Period,
    journeys: Sequence[str] | None,
    declared: dict[str, list[tuple[str, str]]],
) -> dict[str, list[SurveyFigures]]:
    """Per journey: each survey step's figures for all tiers, then tier by tier.

    The survey steps are the journey files' (`declared`: journey -> [(step, kind)]) and any step that
    has an answer on record (a step since removed from its file still shows).
    """
    kinds = {(j, step): kind for j, steps in declared.items() for step, kind in steps}
    if journeys is not None:
        kinds = {key: kind for key, kind in kinds.items() if key[0] in journeys}
    for j, step, kind in answered_steps(conn, journeys):
        kinds.setdefault((j, step), kind)
    if not kinds:
        return {}
    keys = sorted(kinds)
    rows: dict[tuple[str, str, str], SurveyFigures] = {}

    def row(journey: str, step: str, touch: str) -> SurveyFigures:
        return rows.setdefault((journey, step, touch), SurveyFigures(step, kinds[(journey, step)], touch))

    for journey, step in keys:
        row(journey, step, ALL_TIERS)
    for found in _sent(conn, period, keys):
        for touch in (ALL_TIERS, found.touch):
            f = row(found.journey_id, found.step_id, touch)
            f.sent += int(found.sent)
            f.answered += int(found.answered)
    for found in _latest(conn, period, keys):
        if found.kind != kinds[(found.journey_id, found.step_id)]:
            continue  # answers of another kind than the step asks now: not comparable
        for touch in (ALL_TIERS, found.touch):
            f = row(found.journey_id, found.step_id, touch)
            for name in ("respondents", "promoters", "passives", "detractors", "score_sum", "satisfied"):
                setattr(f, name, getattr(f, name) + int(getattr(found, name)))
    by_journey: dict[str, list[SurveyFigures]] = {}

    def order(item: tuple[tuple[str, str, str], SurveyFigures]) -> tuple[str, str, bool, str]:
        (journey, step, touch), _ = item
        return journey, step, touch != ALL_TIERS, touch

    for (journey, _, _), f in sorted(rows.items(), key=order):
        by_journey.setdefault(journey, []).append(_finish(f))
    return by_journey


@dataclass(frozen=True)
class Answer:
    """One answer as `engagement report surveys` lists it."""

    journey: str
    step: str
    contact: str
    account: str
    kind: str
    score: int
    comment: str
    answered_at: datetime


ANSWER_COLUMNS = ("journey", "step", "contact", "account", "kind", "score", "comment", "answered_at")


def answers(
    conn: Connection,
    *,
    period: Period | None = None,
    journey: str | None = None,
    contact: str | None = None,
    account: str | None = None,
) -> list[Answer]:
    """Every answer (in `period`, of one journey, contact or account), oldest first."""
    s = schema.survey_answers
    conditions = []
    if period is not None:
        conditions += [s.c.answered_at >= period.start, s.c.answered_at < period.end]
    for column, value in ((s.c.journey_id, journey), (s.c.contact_id, contact), (s.c.account_id, account)):
        if value is not None:
            conditions.append(column == value)
    stmt = (
        select(
            s.c.journey_id,
            s.c.step_id,
            s.c.contact_id,
            s.c.account_id,
            s.c.kind,
            s.c.score,
            func.coalesce(s.c.comment, literal("")),
            s.c.answered_at,
        )
        .where(*conditions)
        .order_by(s.c.answered_at, s.c.delivery_id)
    )
    return [Answer(*row) for row in conn.execute(stmt)]
