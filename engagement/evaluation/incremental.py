"""Incremental evaluation: which subjects a journey's conditions must be re-evaluated for at this tick.

A journey's last evaluation (enroll, end on goal or exit) stood at an instant t0 and a change mark.
Everyone the conditions admitted at t0 was enrolled, and every active enrollment whose goal or exit held
was ended. At t1 a subject's answer can only differ if
(a) one of the facts its conditions read changed since the mark (the `subject_change` log, filled by
    database triggers: store/change_log.py; `facts_read` says which facts a journey reads), or its
    enrollment in this journey ended (re-entry),
(b) a time-dependent part of a condition may have flipped between t0 and t1: a `days_since/until` edge
    passed over its field, an event or milestone entered (timestamp reached) or left a `within` window,
    a stored score decayed across a bound or band threshold, a `re_entry: {after}` period lapsed.
So only those subjects are evaluated, with the very same SQL as a full evaluation. Everyone is
evaluated (a full pass) the first time, after the journey or the scoring settings changed, when the
clock went back, and for anything this module cannot bound.

The change mark and which log rows it leaves unread: store/progress.py (the log's highest `seq` on
SQLite; on PostgreSQL, where transactions commit out of order, the oldest transaction still running).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Never

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.sql import Select

from engagement import errors
from engagement.conditions import ast, sql
from engagement.conditions.context import EvalContext
from engagement.evaluation import enroll, statements
from engagement.journeys.catalog import Catalog, Journey
from engagement.journeys.spec import ReEntryAfter
from engagement.store import direct, progress, schema
from engagement.store.database import Database

VERSION = "1"  # bump when what an evaluation admits changes for the same journey file
MARGIN = 1e-9  # relative: far above float rounding, far below any real score difference
MOST = 200_000  # more subjects to re-evaluate than this: evaluate everyone (one pass)
PRUNE = 20_000  # at most this many consumed log rows are deleted per tick,
PRUNE_CHUNK = 2_000  # this many per transaction,
PRUNE_SECONDS = 0.25  # and no more chunks once this long was spent (a cold page cache makes them slow)
log = schema.subject_changes
wm = schema.journey_watermarks


class Unbounded(errors.EngagementError):
    """A condition whose flips between two instants this module cannot bound: evaluate everyone."""


@dataclass
class Plan:
    """What one evaluation of a journey covers: `subjects` (their ids) or everyone (None)."""

    mark: int
    subjects: list[str] | None = None


def signature(journey: Journey, ctx: EvalContext) -> str:
    """Everything besides the facts that decides the answers: journey file and status, scoring rules."""
    rules = f"{ctx.half_life_days}:{ctx.green}:{ctx.yellow}:{int(ctx.scorecards)}"
    return f"{VERSION}:{journey.version}:{journey.status}:{rules}"


@dataclass(frozen=True)
class Start:
    """What a journey's evaluation reads first, in one statement (`start`): the change log's mark now, its
    watermark row (None before its first evaluation), the outline of its steps the database recorded
    (moves.py; None before one was) and the highest enrollment id (enroll.py: of this journey's, the ids
    above it are the enrollments this evaluation writes, as nobody else enrolls here under its lock)."""

    mark: int
    watermark: Any
    recorded: Any
    top: int


@functools.cache
def _start(dialect: str) -> Any:
    j = schema.journeys
    one = select(literal(1).label("one")).subquery()  # a row even when the journey has neither yet
    joined = one.outerjoin(j, j.c.id == bindparam("journey")).outerjoin(
        wm, wm.c.journey_id == bindparam("journey")
    )
    mark = progress.log_mark(dialect).label("mark")
    top = enroll.TOP.scalar_subquery().label("top")
    return select(mark, top, j.c.steps, wm.c.signature, wm.c.evaluated_at, wm.c.change_mark).select_from(
        joined
    )


def start(conn: Connection, journey: Journey) -> Start:
    """Read the mark, the watermark, the recorded outline and the top enrollment id (call under the
    journey's lock, first)."""
    row = direct.execute(conn, _start(conn.dialect.name), {"journey": journey.id}).one()
    return Start(int(row.mark), None if row.signature is None else row, row.steps, int(row.top))


def plan(
    db: Database, conn: Connection, journey: Journey, ctx: EvalContext, begun: Start | None = None
) -> Plan:
    """Decide whom this evaluation covers (call under the journey's lock), from `begun` (read now when not
    given: `start`)."""
    begun = begun or start(conn, journey)
    mark, row = begun.mark, begun.watermark
    if row is None or row.signature != signature(journey, ctx) or row.evaluated_at > ctx.now:
        return Plan(mark)
    before = EvalContext(
        row.evaluated_at,
        ctx.audience,
        ctx.half_life_days,
        ctx.green,
        ctx.yellow,
        name="t0",
        scorecards=ctx.scorecards,
    )

    def build() -> Any:
        return union(*_changed(db, journey, ctx), *_flipped(journey, before, ctx))

    # the statement reads t1 - t0 (how far scores decayed) and whether a day began in between besides instants
    shape = ("plan", ctx.rules, ctx.now - before.now, ctx.today == before.today)
    try:
        found = list(
            statements.run(conn, shape, journey, [before, ctx], build, {"mark": row.change_mark}).scalars()
        )
    except Unbounded:
        return Plan(mark)
    if len(found) > MOST:
        return Plan(mark)  # as many as a full pass would look at: do that instead
    return Plan(mark, found)


def record(db: Database, conn: Connection, journey: Journey, ctx: EvalContext, done: Plan) -> None:
    """Remember where this evaluation stood."""
    row = {"journey_id": journey.id, "signature": signature(journey, ctx), "evaluated_at": ctx.now,
           "change_mark": done.mark}  # fmt: skip
    db.upsert(conn, wm, [row], ["journey_id"], ["signature", "evaluated_at", "change_mark"])


def prune(db: Database, catalog: Catalog, seconds: float = PRUNE_SECONDS) -> int:
    """Delete log rows every evaluated journey has read; return how many.

    Oldest first, a chunk per transaction, until PRUNE rows or `seconds` (at least one chunk), so a tick
    never spends long on it: a bulk import's backlog drains over many ticks (reads go by index ranges
    and are not slowed by it).
    """
    wanted = [j.id for j in catalog.journeys.values() if j.status != "draft"]
    if not wanted:
        return 0
    with db.begin() as conn:
        marks = list(conn.execute(MARKS, {"journeys": wanted}).scalars())
    if len(marks) < len(wanted):
        return 0  # a journey has not been evaluated yet: it will read everything anyway
    # marks only move forward, so what was read by everyone when they were read stays read
    started, deleted = time.perf_counter(), 0
    while deleted < PRUNE:
        with db.begin() as conn:
            first = direct.execute(conn, FIRST).scalar_one()
            if first is None:
                return deleted
            size = min(PRUNE_CHUNK, PRUNE - deleted)
            bounds = {"mark": min(marks), "below": first + size}
            chunk = int(direct.execute(conn, _pruning(db.dialect), bounds).rowcount or 0)
        deleted += chunk
        if chunk == 0 or time.perf_counter() - started >= seconds:
            break
    return deleted


# prune's statements, built once: run at every tick
MARKS = select(wm.c.change_mark).where(wm.c.journey_id.in_(bindparam("journeys", expanding=True)))
FIRST = select(func.min(log.c.seq))


@functools.cache
def _pruning(dialect: str) -> Any:
    """Delete the log rows read at parameter `mark` below `seq` parameter `below`."""
    read = progress.log_read(dialect, bindparam("mark", type_=BigInteger))
    return delete(log).where(read, log.c.seq < bindparam("below", type_=BigInteger))


def _changed(db: Database, journey: Journey, ctx: EvalContext) -> list[Select[Any]]:
    """Subjects whose facts changed since the mark (parameter `mark`), and those whose enrollment here
    ended (re-entry)."""
    after = progress.log_unread(db.dialect, bindparam("mark", type_=BigInteger))
    read = facts_read(journey)
    facts = [and_(after, log.c.journey_id.is_(None))]
    if read is not None:  # each an index range: the facts read, and rows naming none (before 0025: any)
        # IN over bound values of its own, not SQLAlchemy's expanding list, which is rendered into the SQL
        # again at every execution (the plan runs at every tick for every journey)
        names = [literal(name, log.c.fact.type) for name in sorted(read)]
        facts = [and_(facts[0], log.c.fact.in_(names)), and_(facts[0], log.c.fact.is_(None))]
    parts: list[Select[Any]] = []
    for fact in facts:
        if journey.audience == "account":
            parts.append(select(log.c.account_id).where(fact, log.c.account_id.is_not(None)))
            continue
        c = schema.contacts
        accounts = select(log.c.account_id).where(
            fact, log.c.contact_id.is_(None), log.c.account_id.is_not(None)
        )
        parts.append(select(log.c.contact_id).where(fact, log.c.contact_id.is_not(None)))
        parts.append(select(c.c.id).where(c.c.account_id.in_(accounts)))
    own = log.c.account_id if journey.audience == "account" else log.c.contact_id
    rule = journey.spec.re_entry
    # an enrollment's end names no fact: the index's range for this journey's ends
    ended = select(own).where(after, log.c.journey_id == journey.id, log.c.fact.is_(None))
    if rule == "always":  # an ended enrollment lets its subject in again
        parts.append(ended)
    elif isinstance(rule, ReEntryAfter):  # ... unless every enrollment it had here is recent (see _flipped)
        en = schema.enrollments
        lapsed = sql.instant(ctx, -rule.after, en.c.entered_at.type)
        earlier = [en.c.journey_id == journey.id, en.c.subject_id == own, en.c.entered_at <= lapsed]
        parts.append(ended.where(exists(select(literal(1)).select_from(en).where(*earlier))))
    return parts


ALWAYS_READ = frozenset({"contact", "account"})  # who the subjects are, their attributes and dates


def facts_read(journey: Journey) -> frozenset[str] | None:
    """The change-log facts (store/change_log.py) the conditions a plan covers read: the trigger's, the
    filter's, the goal's and the exit's; None for a condition it does not know (then: every fact)."""
    read = set(ALWAYS_READ)
    for cond in (journey.trigger, journey.filter, journey.goal, journey.exit):
        for node in [] if cond is None else ast.walk(cond):
            found = _facts(node, journey.audience)
            if found is None:
                return None
            read |= found
    return frozenset(read)


def _facts(node: ast.Condition, audience: str) -> set[str] | None:
    # an account journey reads the account's milestones (conditions/sql.py)
    if isinstance(node, ast.Milestone):
        return {("account_milestone:" if audience == "account" else "milestone:") + node.name}
    if isinstance(node, ast.EventCount):
        return {"event:" + node.event}
    if isinstance(node, ast.Score):
        return {f"{node.scope}_score"}
    if isinstance(node, ast.Health):  # the score's band, or the scorecard's band once there are scorecards
        return {f"{node.scope}_score", "health_score"}
    if isinstance(node, ast.HealthScore | ast.HealthChange):
        return {"health_score"}
    if isinstance(node, ast.Survey):
        return {"survey_answer:" + node.kind}
    if isinstance(node, ast.Attr | ast.Days | ast.All | ast.AnyOf | ast.Not):
        return set()  # the contact's and the account's own rows (ALWAYS_READ); connectives read nothing
    # as in _atom: a new kind fails the type check here, and one that gets past it reads every fact
    unknown: Never = node
    del unknown
    return None


def _flipped(journey: Journey, t0: EvalContext, t1: EvalContext) -> list[Select[Any]]:
    """Subjects for whom a time-dependent part of the journey's conditions may differ at t1 and t0."""
    parts: list[Select[Any]] = []
    conds = [journey.trigger, journey.filter, journey.goal, journey.exit]
    for cond in conds:
        if cond is None:
            continue
        for node in ast.walk(cond):
            parts += _atom(node, journey.audience, t0, t1)
    rule = journey.spec.re_entry
    if isinstance(rule, ReEntryAfter):  # `entered_at > now - after` stops blocking
        en = schema.enrollments
        low, high = _shifted(t0, t1, -rule.after, en.c.entered_at.type)
        # holdout IN (both): lets the range use ix_enrollment_report (journey_id, holdout, entered_at, …)
        lapsed = [
            en.c.journey_id == journey.id,
            en.c.holdout.in_([literal(False), literal(True)]),  # not expanding: see _changed
            en.c.entered_at.between(low, high),
        ]
        parts.append(select(en.c.subject_id).where(*lapsed))
    return parts


def _atom(node: ast.Condition, audience: str, t0: EvalContext, t1: EvalContext) -> list[Select[Any]]:
    if isinstance(node, ast.Milestone):
        return _timed(audience, node.name, node.within, t0, t1, milestone=True)
    if isinstance(node, ast.EventCount):
        return _timed(audience, node.event, node.within, t0, t1, milestone=False)
    if isinstance(node, ast.Days):
        return _days(node, audience, t0, t1)
    if isinstance(node, ast.Score):
        return [_crossing(node.scope, audience, [n for _, n in node.bounds], t0, t1)]
    if isinstance(node, ast.Health) and t1.scorecards:
        return []  # the stored band: a refresh that changes it writes health_score, which the log records
    if isinstance(node, ast.Health):
        return [_crossing(node.scope, audience, [t1.green, t1.yellow], t0, t1)]
    if isinstance(node, ast.HealthScore):
        return []  # stored, like the band
    if isinstance(node, ast.HealthChange):
        if t0.today != t1.today:  # the snapshot `within` ago is another day's now
            raise Unbounded("health_change reads another day's snapshot")
        return []
    if isinstance(node, ast.Survey):
        return _answers(node, audience, t0, t1)
    if isinstance(node, ast.Attr | ast.All | ast.AnyOf | ast.Not):
        return []  # attributes and the connectives do not depend on time
    # A node this function does not know may depend on time: a new kind in ast.Condition fails the
    # type check here, and one that gets past it anyway makes the evaluation a full one, never a miss.
    unknown: Never = node
    raise Unbounded(f"no bound for {type(unknown).__name__}")


def _shifted(t0: EvalContext, t1: EvalContext, by: timedelta, type_: Any) -> tuple[Any, Any]:
    """Both instants moved `by`, as parameters."""
    try:
        return sql.instant(t0, by, type_), sql.instant(t1, by, type_)
    except OverflowError as exc:
        raise Unbounded from exc


def _timed(
    audience: str, name: str, within: timedelta | None, t0: EvalContext, t1: EvalContext, *, milestone: bool
) -> list[Select[Any]]:
    """Facts whose timestamp reached `now`, or left the `within` window, between t0 and t1."""
    if milestone:
        table = schema.account_milestones if audience == "account" else schema.milestones
        at, owner = table.c.reached_at, table.c.account_id if audience == "account" else table.c.contact_id
    else:
        table = schema.events
        at, owner = table.c.timestamp, table.c.account_id if audience == "account" else table.c.contact_id
    named = table.c.name == name
    parts = [select(owner).where(named, at.between(*_shifted(t0, t1, timedelta(0), at.type)))]
    if within is not None:
        start0, start1 = t0.window_start(within), t1.window_start(within)
        if start0 is not None or start1 is not None:
            if start0 is None or start1 is None:
                raise Unbounded
            parts.append(select(owner).where(named, at.between(*_shifted(t0, t1, -within, at.type))))
        else:  # both before year 1: the window covers all time at both instants
            t1.unreusable.append(f"within {within}")
    return parts


def _answers(node: ast.Survey, audience: str, t0: EvalContext, t1: EvalContext) -> list[Select[Any]]:
    """Contacts with an answer of the kind that reached `now`, or left the `within` window, between t0 and t1."""
    if audience == "account":
        raise Unbounded
    a = schema.survey_answers.c
    kind = a.kind == node.kind
    parts = [select(a.contact_id).where(kind, a.answered_at.between(t0.now, t1.now))]
    if node.within is not None:
        start0, start1 = t0.window_start(node.within), t1.window_start(node.within)
        if start0 is None or start1 is None:
            raise Unbounded
        parts.append(select(a.contact_id).where(kind, a.answered_at.between(start0, start1)))
    return parts


def _days(node: ast.Days, audience: str, t0: EvalContext, t1: EvalContext) -> list[Select[Any]]:
    """Subjects whose field lies where a whole-days edge moved between t0 and t1."""
    scope, _, name = node.field.partition(".")
    if scope == "contact" and audience == "account":
        raise Unbounded
    table = schema.contacts if scope == "contact" else schema.accounts
    col = table.c[name]
    is_date = ast.TIME_FIELDS[node.field] == "date"
    if (t0.today == t1.today) if is_date else (t0.now == t1.now):
        return []
    sign = -1 if node.direction == "since" else 1
    ranges = []
    for _, number in node.bounds:
        for k in (int(number), int(number) + 1):
            try:
                if is_date:
                    low, high = sql.day(t0, sign * k, col.type), sql.day(t1, sign * k, col.type)
                else:
                    low, high = _shifted(t0, t1, sign * timedelta(days=k), col.type)
            except OverflowError as exc:
                raise Unbounded from exc
            ranges.append(col.between(low, high))
    ids = select(table.c.id).where(or_(*ranges))
    if scope == "account" and audience == "contact":
        c = schema.contacts
        return [select(c.c.id).where(c.c.account_id.in_(ids))]
    return [ids]


def _crossing(
    scope: str, audience: str, thresholds: list[float], t0: EvalContext, t1: EvalContext
) -> Select[Any]:
    """Subjects whose stored score, decayed as in conditions/sql.py, crossed or touched a threshold."""
    if scope == "contact" and audience == "account":
        raise Unbounded
    s = schema.account_scores if scope == "account" else schema.contact_scores
    owner = s.c.account_id if scope == "account" else s.c.contact_id

    # the score decays by the same factor k from t0 to t1 for every row, so it passes n between them
    # iff its value at t0 lies between n and n / k; widened by a relative margin for rounding (a superset)
    factor = func.power(literal(0.5, Float), (sql.now_day(t0) - s.c.as_of_day) / t0.half_life_days)
    at_t0 = s.c.value * factor
    k = 0.5 ** ((t1.now_day - t0.now_day) / t1.half_life_days)
    if k < 1e-6:  # some twenty half-lives in one jump: simpler to evaluate everyone
        raise Unbounded
    ranges = []
    for n in thresholds:
        low, high = sorted((n, n / k))
        slack = MARGIN * max(abs(low), abs(high)) + MARGIN
        ranges.append(at_t0.between(low - slack, high + slack))
    crossed = or_(*ranges)
    ids = select(owner).where(crossed)
    if scope == "account" and audience == "contact":
        c = schema.contacts
        return select(c.c.id).where(c.c.account_id.in_(ids))
    return ids
