"""Engagement scores: credit new responses and product events, decay them, snapshot them daily.

Every credited fact becomes one `score_credit` row under a key that says how often it may
count (one open and one click per delivery, one active day per contact and UTC day, one
credit per milestone and contact), so crediting twice, or from two processes, counts once.
A score row holds its value as of `as_of_day`; a credit at day `t` adds
`weight * 0.5 ** ((as_of_day - t) / half_life)`, and readers decay the value to their own
"now" the same way (see `conditions.sql.score_expr`). An account's score is the sum of its
contacts' credits plus the credits of events that name the account without a known contact.

New rows are found by primary key above a watermark (`score_watermark`), moved as store/progress.py
says: on PostgreSQL a row can commit after a row with a higher key, so the watermark moves up to the
highest key seen only once every transaction that was running then has finished; until then the range
is read again and the keys of `score_credit` absorb the overlap.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Integer,
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from engagement import vocab
from engagement.conditions import sql
from engagement.conditions.context import EvalContext, day_number
from engagement.config import Settings
from engagement.journeys import files
from engagement.scores import activity
from engagement.store import direct, functions, progress, schema
from engagement.store.database import Database

WATERMARK = "scores"
_w = schema.score_watermarks
# the lock's statements, built once: run every tick
RAN = update(_w).where(_w.c.name == WATERMARK).values(ran_at=bindparam("now", type_=_w.c.ran_at.type))
WATERMARK_ROW = select(_w).where(_w.c.name == WATERMARK)
TABLES = ("response", "event")  # read by key, their positions in score_watermark (store/progress.py)
ENGINE_SOURCE = activity.ENGINE_SOURCE
RESPONSE_WEIGHTS = {  # response kind -> the weight it earns (one per delivery)
    vocab.ResponseKind.OPEN: "open",
    vocab.ResponseKind.CLICK: "click",
    vocab.ResponseKind.SEEN: "nudge_seen",
    vocab.ResponseKind.CLICKED: "nudge_clicked",
    vocab.ResponseKind.DISMISSED: "nudge_dismissed",
    vocab.ResponseKind.BOUNCE: "bounce",
    vocab.ResponseKind.SPAMREPORT: "spamreport",
    vocab.ResponseKind.UNSUBSCRIBE: "unsubscribe",
    vocab.ResponseKind.GROUP_UNSUBSCRIBE: "unsubscribe",
    vocab.ResponseKind.ANSWERED: "survey_answered",
}
CREDIT_COLUMNS = ["key", "contact_id", "account_id", "kind", "detail", "weight", "at_day"]
RETURNED = ["contact_id", "account_id", "weight", "at_day"]  # what a new credit adds to the scores


class DayNumber(FunctionElement[float]):
    """A timestamp as fractional days since the Unix epoch (the unit of `as_of_day`)."""

    inherit_cache = True
    name = "day_number"
    type = Float()


functions.render(
    DayNumber,
    sqlite=lambda _, args: f"(julianday({args[0]}) - 2440587.5)",
    postgresql=lambda _, args: f"(extract(epoch from {args[0]}) / 86400.0)",
)


def context(settings: Settings, now: datetime, audience: str = "contact") -> EvalContext:
    """The evaluation context scores are read with at `now`: the audience's bands, and its contacts'."""
    scoring = settings.scoring
    own, people = scoring.bands_of(audience), scoring.contact_bands
    return EvalContext(
        now,
        audience,
        scoring.half_life_days,
        own.green,
        own.yellow,
        contact_bands=(people.green, people.yellow),
        scorecards=has_scorecards(settings),
    )


def has_scorecards(settings: Settings) -> bool:
    """Whether `health.dir` holds a scorecard file (then health conditions read the scorecard bands)."""
    folder = settings.path(settings.health.dir)
    return folder.is_dir() and any(p.suffix in files.SUFFIXES and p.is_file() for p in folder.rglob("*"))


def credit(db: Database, settings: Settings, now: datetime) -> int:
    """Credit every response and product event not credited yet; return how many credits were added."""
    with db.begin() as conn:
        mark = _lock(db, conn, now)
        top_response = _max_pk(conn, schema.responses.c.pk)
        top_event = _max_pk(conn, schema.events.c.pk)
        ref = day_number(now)
        ranges = [
            (_response_credits, mark.settled["response"], top_response),
            (_active_days, mark.settled["event"], top_event),
            (_milestones, mark.settled["event"], top_event),
        ]
        deltas = _Deltas(ref, settings.scoring.half_life_days)
        for query, low, high in ranges:
            stmt = _credits(db, settings, query)
            if stmt is not None and high > low:
                deltas.add(
                    db.inserted_returning(conn, stmt, {"low": low, "high": high, "ref": ref}, kept=True)
                )
        _apply(db, conn, deltas)
        _advance(db, conn, mark, top_response, top_event, now)
    return deltas.count


def _lock(db: Database, conn: Connection, now: datetime) -> progress.Keys:
    """Take the scorers' lock (the watermark row) and read it."""
    db.insert_ignore(conn, schema.score_watermarks, [{"name": WATERMARK}], ["name"])
    direct.execute(conn, RAN, {"now": now})  # row lock until commit
    return progress.keys(conn, direct.execute(conn, WATERMARK_ROW).one(), TABLES)


def _advance(
    db: Database, conn: Connection, mark: progress.Keys, top_response: int, top_event: int, now: datetime
) -> None:
    values = progress.advanced(db.dialect, mark, {"response": top_response, "event": top_event}, now)
    if values is not None:
        w = schema.score_watermarks
        conn.execute(update(w).where(w.c.name == WATERMARK).values(values))


def _max_pk(conn: Connection, column: Any) -> int:
    return int(direct.execute(conn, _top(column)).scalar_one())


@functools.cache  # built once per table: read every tick
def _top(column: Any) -> Any:
    return select(func.coalesce(func.max(column), 0))


_built: dict[tuple[str, int, str], tuple[Settings, Any]] = {}  # (dialect, id(settings), query) -> its INSERT


def _credits(db: Database, settings: Settings, query: Callable[[Settings], Any]) -> Any:
    """The INSERT … SELECT … RETURNING of one kind of credit (None when it earns nothing), built once per
    settings: the range of keys read and the reference day are the parameters `low`, `high` and `ref`."""
    key = (db.dialect, id(settings), query.__name__)
    found = _built.get(key)
    if found is None or found[0] is not settings:  # the entry holds its settings: no other takes the id
        select_ = query(settings)
        returned = [schema.score_credits.c[name] for name in RETURNED]
        stmt = None if select_ is None else db.insert_select(schema.score_credits, CREDIT_COLUMNS, select_)
        found = _built[key] = (settings, None if stmt is None else stmt.returning(*returned))
    return found[1]


def _at_day(ts: Any) -> ColumnElement[float]:
    """The day a credit counts from; a time in the future (clock skew) counts as now (parameter `ref`)."""
    day = DayNumber(ts)
    ref = bindparam("ref", type_=Float)
    return case((day > ref, ref), else_=day)


def _response_credits(settings: Settings) -> Any:
    weights = {
        kind: settings.scoring.weights[name]
        for kind, name in RESPONSE_WEIGHTS.items()
        if settings.scoring.weights[name] != 0
    }
    if not weights:
        return None
    r, d, c = schema.responses, schema.deliveries, schema.contacts
    name = case(RESPONSE_WEIGHTS, value=r.c.kind)
    contact = func.coalesce(r.c.contact_id, d.c.contact_id)
    first = (
        select(
            name.label("name"),
            r.c.delivery_id,
            func.min(contact).label("contact_id"),
            func.min(r.c.journey_id + "/" + r.c.step_id).label("detail"),
            func.min(r.c.occurred_at).label("occurred_at"),
        )
        .select_from(r.outerjoin(d, d.c.id == r.c.delivery_id))
        .where(*_key_range(r.c.pk), r.c.kind.in_(list(weights)), contact.is_not(None))
        .group_by(name, r.c.delivery_id)
        .subquery()
    )
    by_name = {RESPONSE_WEIGHTS[kind]: weight for kind, weight in weights.items()}
    return select(
        (literal("r:") + first.c.name + ":" + first.c.delivery_id).label("key"),
        first.c.contact_id,
        c.c.account_id,
        first.c.name.label("kind"),
        first.c.detail,
        case(by_name, value=first.c.name).label("weight"),
        _at_day(first.c.occurred_at).label("at_day"),
    ).select_from(first.outerjoin(c, c.c.id == first.c.contact_id))


def _key_range(pk: Any) -> list[ColumnElement[bool]]:
    """Keys above parameter `low` up to `high`."""
    return [pk > bindparam("low", type_=BigInteger), pk <= bindparam("high", type_=BigInteger)]


def _event_range() -> list[ColumnElement[bool]]:
    e = schema.events
    return [*_key_range(e.c.pk), e.c.source != ENGINE_SOURCE]


def _active_days(settings: Settings) -> Any:
    weight = settings.scoring.weights["active_day"]
    if weight == 0:
        return None
    e = schema.events
    day = DayNumber(e.c.timestamp)
    used = (
        select(
            e.c.contact_id,
            e.c.account_id,
            e.c.timestamp,
            cast(func.floor(day), Integer).label("day"),
        )
        .where(*_event_range(), activity.is_activity(e.c.name, settings.events.not_activity))
        .subquery()
    )
    return select(
        (literal("d:") + used.c.contact_id + ":" + cast(used.c.day, String)).label("key"),
        used.c.contact_id,
        func.min(used.c.account_id).label("account_id"),
        literal("active_day").label("kind"),
        literal("").label("detail"),
        literal(weight, Float).label("weight"),
        _at_day(func.min(used.c.timestamp)).label("at_day"),
    ).group_by(used.c.contact_id, used.c.day)


def _milestones(settings: Settings) -> Any:
    weight = settings.scoring.weights["milestone"]
    names = settings.scoring.milestones
    if weight == 0 or not names:
        return None
    e = schema.events
    return (
        select(
            (literal("m:") + e.c.contact_id + ":" + e.c.name).label("key"),
            e.c.contact_id,
            func.min(e.c.account_id).label("account_id"),
            literal("milestone").label("kind"),
            e.c.name.label("detail"),
            literal(weight, Float).label("weight"),
            _at_day(func.min(e.c.timestamp)).label("at_day"),
        )
        .where(*_event_range(), e.c.name.in_(names))
        .group_by(e.c.contact_id, e.c.name)
    )


class _Deltas:
    """New credits, decayed to `ref` and summed per contact and per account as they stream in."""

    def __init__(self, ref: float, half_life: float) -> None:
        self.ref, self.half_life, self.count = ref, half_life, 0
        self.by_contact: dict[str, float] = defaultdict(float)
        self.by_account: dict[str, float] = defaultdict(float)

    def add(self, added: Iterable[Any]) -> None:
        for contact_id, account_id, weight, at_day in added:
            value = weight * 0.5 ** ((self.ref - at_day) / self.half_life)
            self.by_contact[contact_id] += value
            if account_id is not None:
                self.by_account[account_id] += value
            self.count += 1


def _apply(db: Database, conn: Connection, deltas: _Deltas) -> None:
    """Add the new credits to the contact and account scores."""
    ref, half_life = deltas.ref, deltas.half_life
    for table, key, by_owner in (
        (schema.contact_scores, "contact_id", deltas.by_contact),
        (schema.account_scores, "account_id", deltas.by_account),
    ):
        rows = [{key: owner, "value": by_owner[owner], "as_of_day": ref} for owner in sorted(by_owner)]
        db.upsert(conn, table, rows, [key], _rebase(table, half_life))


@functools.cache  # the same functions at every tick: Database.upsert keeps the statement made with them
def _rebase(table: Any, half_life: float) -> dict[str, Any]:
    """ON CONFLICT: decay the stored value to the new reference day, then add the delta."""

    def value(ex: Any) -> Any:
        factor = func.power(literal(0.5, Float), (ex.as_of_day - table.c.as_of_day) / half_life)
        return table.c.value * factor + ex.value

    return {"value": value, "as_of_day": lambda ex: ex.as_of_day}


def snapshot(db: Database, settings: Settings, now: datetime) -> int:
    """Record every contact's and account's decayed score and band for `now`'s UTC day; return rows written.

    Credits what is new first. Running it again the same day replaces that day's rows.
    """
    credit(db, settings, now)
    day = context(settings, now).today
    s = schema.score_snapshots
    written = 0
    with db.begin() as conn:
        conn.execute(delete(s).where(s.c.day == day))
        for subject_type in ("contact", "account"):
            ctx = context(settings, now, subject_type)
            source, subject = sql.subjects_from(subject_type)
            score = sql.score_expr(subject_type, ctx)
            query = select(
                literal(day, s.c.day.type).label("day"),
                literal(subject_type).label("subject_type"),
                subject.label("subject_id"),
                score.label("value"),
                sql.case_band(score, ctx).label("band"),
            ).select_from(source)
            # a WHERE is needed anyway: SQLite cannot parse INSERT … SELECT … FROM t ON CONFLICT without one
            if subject_type == "contact":
                query = query.where(schema.contacts.c.erased_at.is_(None))
            else:
                query = query.where(true())
            written += db.insert_from_select(
                conn, s, ["day", "subject_type", "subject_id", "value", "band"], query
            )
    return written
