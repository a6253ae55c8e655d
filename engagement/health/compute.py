"""Refresh every account's health, set-based: a statement per measure, one to score, one to write.

1. `health_measure` is emptied, then each measure of each scorecard is one INSERT … SELECT over the
   accounts that scorecard applies to (the first by `order` whose `applies_to` holds), joined to its
   metric's SELECT (health/metrics.py): the value, and its points (piecewise linear, flat beyond the ends;
   no value: the `missing` points, or NULL when skipped).
2. One INSERT … SELECT … ON CONFLICT writes each account's score (sum(weight * points) / sum(weight) over the
   measures with points, rounded to 0.01) and band into `health_score`, updating a row only where the
   scorecard, score or band changed: the change log's triggers then mark exactly those accounts, which
   the next tick re-evaluates for journeys that read health.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, delete, func, literal, null, select, true, union_all, update
from sqlalchemy.sql import ColumnElement

from engagement.conditions import sql as condition_sql
from engagement.config import Settings
from engagement.health import cards as scorecards
from engagement.health import metrics, spec
from engagement.scores import scoring
from engagement.store import schema
from engagement.store.database import Database

WATERMARK = "health"  # its score_watermark row is the refreshers' lock and says when the last ran
UNKNOWN = "unknown"
acc = schema.accounts.c
hm, hs = schema.health_measures, schema.health_scores
MEASURE_COLUMNS = ["account_id", "measure_id", "scorecard_id", "value", "points", "weight"]
SCORE_COLUMNS = ["account_id", "scorecard_id", "score", "band", "changed_at"]


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: accounts scored and accounts whose scorecard, score or band changed."""

    accounts: int
    changed: int


def chosen(cards: scorecards.Cards, settings: Settings, now: datetime) -> ColumnElement[Any]:
    """SQL over `account`: the id of the first scorecard whose `applies_to` holds, else NULL."""
    if not cards.cards:
        return null()
    ctx = scoring.context(settings, now, "account")
    whens = [
        (
            true() if card.applies_to is None else condition_sql.compile_condition(card.applies_to, ctx),
            card.id,
        )
        for card in cards.cards
    ]
    return case(*whens, else_=null())


def points(measure: spec.Measure, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQL: the measure's points for a value (the `missing` points, or NULL, when the value is NULL)."""
    pairs = measure.points
    missing = null() if measure.missing == "skip" else literal(float(measure.missing), Float)
    whens: list[tuple[ColumnElement[bool], Any]] = [(value.is_(None), missing)]
    x0, y0 = pairs[0]
    whens.append((value <= x0, literal(y0, Float)))
    for (xa, ya), (xb, yb) in itertools.pairwise(pairs):
        slope = (yb - ya) / (xb - xa)
        whens.append((value <= xb, literal(ya, Float) + (value - xa) * slope))
    return case(*whens, else_=literal(pairs[-1][1], Float))


def refresh(db: Database, settings: Settings, cards: scorecards.Cards, now: datetime) -> Refreshed:
    """Recompute every account's measures, score and band at `now`; return what changed."""
    choice = chosen(cards, settings, now)
    with db.begin() as conn:
        _lock(db, conn, now)
        conn.execute(delete(hm).where(true()))
        for group in _groups(cards):
            conn.execute(_measure_insert(db, group, choice, settings, now))
        score = (
            select(
                hm.c.account_id, (func.sum(hm.c.weight * hm.c.points) / func.sum(hm.c.weight)).label("score")
            )
            .where(hm.c.points.is_not(None))
            .group_by(hm.c.account_id)
            .subquery("scored")
        )
        fresh = (
            select(
                acc.id.label("account_id"),
                choice.label("scorecard_id"),
                _rounded(score.c.score).label("score"),
            )
            .select_from(schema.accounts.outerjoin(score, score.c.account_id == acc.id))
            .subquery("fresh")
        )
        rows = select(
            fresh.c.account_id,
            fresh.c.scorecard_id,
            fresh.c.score,
            _band(cards, fresh.c.scorecard_id, fresh.c.score).label("band"),
            literal(now, hs.c.changed_at.type).label("changed_at"),
        ).where(true())
        changed = db.upsert_from_select(
            conn, hs, SCORE_COLUMNS, rows, ["account_id"], SCORE_COLUMNS[1:], _differs
        )
        changed += int(conn.execute(delete(hs).where(hs.c.account_id.not_in(select(acc.id)))).rowcount or 0)
        total = int(conn.execute(select(func.count()).select_from(hs)).scalar_one())
    return Refreshed(total, changed)


def _lock(db: Database, conn: Any, now: datetime) -> None:
    w = schema.score_watermarks
    db.insert_ignore(conn, w, [{"name": WATERMARK}], ["name"])
    conn.execute(update(w).where(w.c.name == WATERMARK).values(ran_at=now))  # row lock until commit


def last_refresh(db: Database) -> datetime | None:
    """When health was last refreshed (None: never)."""
    w = schema.score_watermarks
    with db.begin() as conn:
        return conn.execute(select(w.c.ran_at).where(w.c.name == WATERMARK)).scalar_one_or_none()


Slot = list[tuple[scorecards.Scorecard, spec.Measure]]  # at most one measure of each scorecard


def _groups(cards: scorecards.Cards) -> list[list[Slot]]:
    """The measures of every scorecard by metric (metrics.key), each group one statement, so a metric used
    by several measures is computed once; a group's slots hold at most one measure of a scorecard each."""
    groups: dict[str, list[Slot]] = {}
    for card in cards.cards:
        seen: dict[str, int] = {}
        for measure in card.spec.measures:
            k = metrics.key(measure.metric)
            n = seen[k] = seen.get(k, -1) + 1
            slots = groups.setdefault(k, [])
            if n == len(slots):
                slots.append([])
            slots[n].append((card, measure))
    return list(groups.values())


def _measure_insert(
    db: Database, group: list[Slot], choice: ColumnElement[Any], settings: Settings, now: datetime
) -> Any:
    """INSERT … SELECT of one metric's measures, for every account whose scorecard has one of them: the
    metric's SELECT is a CTE that each slot's SELECT reads (UNION ALL)."""
    metric = metrics.select_for(group[0][0][1].metric, settings, now).cte("metric")

    def value(measure: spec.Measure) -> ColumnElement[Any]:
        found: ColumnElement[Any] = metric.c[metrics.column(measure.metric)]
        if measure.metric.kind in metrics.ZERO_WHEN_ABSENT:
            found = func.coalesce(found, literal(0.0, Float))
        return found

    def one(slot: Slot) -> Any:
        def by_card(pick: Any) -> ColumnElement[Any]:
            return case(*((choice == card.id, pick(measure)) for card, measure in slot), else_=null())

        return (
            select(
                acc.id.label("account_id"),
                by_card(lambda m: literal(m.id)).label("measure_id"),
                choice.label("scorecard_id"),
                by_card(value).label("value"),
                by_card(lambda m: points(m, value(m))).label("points"),
                by_card(lambda m: literal(m.weight, Float)).label("weight"),
            )
            .select_from(schema.accounts.outerjoin(metric, metric.c.account_id == acc.id))
            .where(choice.in_([card.id for card, _ in slot]))
        )

    selects: list[Any] = [one(slot) for slot in group]
    query: Any = selects[0] if len(selects) == 1 else union_all(*selects)
    return db.insert_select(hm, MEASURE_COLUMNS, query)


def _rounded(score: ColumnElement[Any]) -> ColumnElement[Any]:
    """To 0.01 (a score that moved less is not a change), the same on both engines (NULL stays NULL: the
    floor SQLAlchemy gives SQLite is Python's, which refuses None)."""
    return case((score.is_(None), null()), else_=func.floor(score * 100.0 + 0.5) / 100.0)


def _band(
    cards: scorecards.Cards, card_id: ColumnElement[Any], score: ColumnElement[Any]
) -> ColumnElement[str]:
    whens: list[tuple[ColumnElement[bool], str]] = [(score.is_(None), UNKNOWN)]
    for card in cards.cards:
        bands = card.spec.bands
        whens.append((and_(card_id == card.id, score >= bands.green), "green"))
        whens.append((and_(card_id == card.id, score >= bands.yellow), "yellow"))
    return case(*whens, else_="red")


def _differs(new: Any) -> ColumnElement[bool]:
    return (
        hs.c.scorecard_id.is_distinct_from(new.scorecard_id)
        | hs.c.score.is_distinct_from(new.score)
        | hs.c.band.is_distinct_from(new.band)
    )


def snapshot(db: Database, settings: Settings, cards: scorecards.Cards, now: datetime) -> int:
    """Refresh, then record every account's health for `now`'s UTC day; return rows written.

    Running it again the same day replaces that day's rows (like the engagement score's snapshot).
    """
    refresh(db, settings, cards, now)
    s = schema.health_snapshots
    day = now.date()
    with db.begin() as conn:
        conn.execute(delete(s).where(s.c.day == day))
        rows = select(
            literal(day, s.c.day.type).label("day"), hs.c.account_id, hs.c.scorecard_id, hs.c.score, hs.c.band
        ).where(true())
        return db.insert_from_select(conn, s, ["day", "account_id", "scorecard_id", "score", "band"], rows)
