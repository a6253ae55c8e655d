"""Enroll: who enters a journey at `now`, decided and written in one set-based statement.

Most journeys open with moves that depend on nothing about the subject: a first message, then a wait
(or the end). Those moves are decided once per journey (`first_moves`), the enrollments are written
straight into the state after them and the first messages are queued set-based, so a new enrollment
is written once instead of inserted at its first step and then updated by advance.py. A journey whose
first moves consult a condition (a guard, a branch, a wait_until) enrolls at its first step as before.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.sql import ColumnElement

from engagement import errors, vocab
from engagement.conditions import ast, sql
from engagement.conditions.context import EvalContext
from engagement.evaluation import advance, holdout, statements, stepper
from engagement.journeys.catalog import Journey
from engagement.journeys.spec import ReEntryAfter
from engagement.store import database, schema
from engagement.store.database import Database

COLUMNS = [
    "journey_id",
    "audience",
    "subject_id",
    "account_id",
    "holdout",
    "state",
    "step_id",
    "next_action_at",
    "wait_started_at",
    "outcome",
    "end_reason",
    "entered_at",
    "ended_at",
    "trigger_ref",
    "journey_version",
]
en = schema.enrollments
NOW = timedelta(0)
TOP = select(func.coalesce(func.max(en.c.id), 0))


@dataclass
class Entered(advance.Advanced):
    """What enrolling did: enrollments written, and (`Advanced`) what their first moves made at once."""

    enrolled: int = 0


class _Consulted(errors.EngagementError):
    """The first moves depend on a condition about the subject."""


def first_moves(journey: Journey, now: datetime) -> stepper.Decision | None:
    """What every enrollment entering at `now` does at once, when that depends only on its holdout flag.

    Holdout enrollments make the same moves without the messages, and end as "holdout" where the others
    complete. None when a condition is consulted on the way (then advance.py decides per subject).
    """

    def refuse(cond: ast.Condition) -> bool:
        raise _Consulted

    try:
        sent, held = (
            stepper.decide(journey.program, 0, None, now, refuse, holdout=h, due_since=now)
            for h in (False, True)
        )
    except _Consulted:
        return None
    parked = ("step_id", "next_action_at", "wait_started_at")
    if any(getattr(sent, a) != getattr(held, a) for a in parked) or (sent.outcome is None) != (
        held.outcome is None
    ):
        return None  # not reached by stepper.decide today: holdout only leaves the messages out
    return sent


def enroll(
    db: Database,
    conn: Connection,
    journey: Journey,
    ctx: EvalContext,
    among: Sequence[str] | None = None,
    top: int | None = None,
) -> Entered:
    """Enroll every subject the trigger, filter and re-entry rules admit, making their first moves where
    those are the same for everyone (`first_moves`).

    `among` (subject ids, see incremental.py) limits a condition trigger's evaluation to the subjects
    whose answer may have changed since the journey's last evaluation. `top` is the highest enrollment id
    when this journey's lock was taken (incremental.start reads it), read here when not given.
    """
    if among is not None and not among and limited(journey):
        return Entered()  # no subject's answer can have changed
    dialect = conn.dialect.name
    moves = first_moves(journey, ctx.now)
    # ids only grow (SQLite's rowid is max + 1; a sequence hands out higher ids than any committed), and
    # this journey's enrolling holds its lock (tick.py): the ids above `top` are the rows written here
    if moves is None:
        top = 0
    elif top is None:
        top = int(conn.execute(TOP).scalar_one())

    def build() -> Any:
        limit = (
            None
            if among is None
            else database.among_param(dialect, sql.subjects_from(journey.audience)[1], "among")
        )
        return db.insert_select(en, COLUMNS, candidates(journey, ctx, limit, moves))

    shape = ("enroll", ctx.rules, among is None, _shape(moves, ctx.now))
    stmt, values = statements.prepared(conn, shape, journey, [ctx], build)
    if among is not None:
        values["among"] = database.among_value(dialect, among)
    entered = Entered(enrolled=db.inserted(conn, stmt, values, kept=True))
    if moves is None or not entered.enrolled:
        return entered
    entered.stepped = entered.enrolled
    if moves.outcome is not None:
        entered.completed = entered.enrolled
    new = and_(en.c.journey_id == journey.id, en.c.id > bindparam("top"), not_(en.c.holdout))
    for instr, moment in moves.messages:
        entered.queued += advance.queue(db, conn, journey, instr, ("new", new), moment, ctx, {"top": top})
    return entered


def limited(journey: Journey) -> bool:
    """Whether `among` limits enrolling, as in `candidates`: a condition trigger does; event and milestone
    triggers read a window of their table instead."""
    return journey.spec.trigger.kind not in ("event", "milestone") and journey.trigger is not None


def _shape(moves: stepper.Decision | None, now: datetime) -> Hashable:
    """What of the first moves the enrolling statement reads: the state after them, times from `now`."""
    if moves is None:
        return None
    at = moves.next_action_at, moves.wait_started_at
    return moves.step_id, moves.outcome, tuple(None if t is None else t - now for t in at)


def candidates(
    journey: Journey,
    ctx: EvalContext,
    limit: ColumnElement[bool] | None = None,
    moves: stepper.Decision | None = None,
) -> Any:
    """SELECT of the enrollment rows to insert (one per admitted subject), at the first step, or in the
    state after `moves` when given."""
    source, subject = sql.subjects_from(journey.audience)
    account_col = schema.accounts.c.id
    trigger = journey.spec.trigger
    at = en.c.entered_at.type
    now = sql.instant(ctx, NOW, at)
    occurred: ColumnElement[Any] | None = None
    ref: ColumnElement[Any] = literal(None)
    condition: ColumnElement[bool] | None = None  # a condition trigger's
    where: list[ColumnElement[bool]] = []
    # The trigger's table is joined under an alias: a condition in the filter or goal on the same table
    # (a milestone goal on a milestone trigger, say) must not correlate with the trigger's join.
    if journey.audience == "contact":
        where.append(schema.contacts.c.erased_at.is_(None))  # an erased contact enters nothing
    if trigger.kind == "event":
        e = schema.events.alias("trigger_event")
        owner = e.c.account_id if journey.audience == "account" else e.c.contact_id
        source = source.join(e, owner == subject)
        where += [
            e.c.name == trigger.event,
            e.c.timestamp <= sql.instant(ctx, NOW, e.c.timestamp.type),
            e.c.timestamp > sql.instant(ctx, -journey.spec.lookback, e.c.timestamp.type),
        ]
        occurred, ref = e.c.timestamp, func.min(e.c.pk)
    elif trigger.kind == "milestone":
        if journey.audience == "account":
            m = schema.account_milestones.alias("trigger_milestone")
            source = source.join(m, m.c.account_id == subject)
        else:
            m = schema.milestones.alias("trigger_milestone")
            source = source.join(m, m.c.contact_id == subject)
        where += [
            m.c.name == trigger.milestone,
            m.c.reached_at <= sql.instant(ctx, NOW, m.c.reached_at.type),
            m.c.reached_at > sql.instant(ctx, -journey.spec.lookback, m.c.reached_at.type),
        ]
        occurred = m.c.reached_at
    elif journey.trigger is not None:
        condition = sql.compile_condition(journey.trigger, ctx)
        if limit is not None:  # event and milestone triggers read an indexed window: cheap already
            where.insert(0, limit)
    # The re-entry rule first of the conditions that read other rows: one index probe, which turns away
    # everyone already in the journey (most of a plan's subjects) before the trigger's, filter's and
    # goal's subqueries run; SQLite runs a WHERE's correlated subqueries in the order written (the low-
    # adoption enrolling took half the time with it first). The order of AND terms changes no answer.
    where.append(_re_entry_allows(journey, subject, occurred, ctx))
    if condition is not None:
        where.append(condition)
    for cond in (journey.filter,):
        if cond is not None:
            where.append(sql.compile_condition(cond, ctx))
    for cond in (journey.goal, journey.exit):  # already there: nothing to move
        if cond is not None:
            where.append(not_(sql.compile_condition(cond, ctx)))
    held = holdout.held_sql(journey.id, journey.holdout, journey.holdout_by, subject, account_col)
    in_holdout = false() if held is None else held
    state: dict[str, Any] = {
        "state": vocab.EnrollmentState.ACTIVE,
        "step_id": journey.program[0].step_id,
        "next_action_at": now,
    }
    if moves is not None and moves.outcome is not None:
        outcome = case(
            (in_holdout, literal(vocab.EnrollmentOutcome.HOLDOUT.value)),
            else_=literal(vocab.EnrollmentOutcome.COMPLETED.value),
        )
        state = {
            "state": vocab.EnrollmentState.ENDED,
            "outcome": outcome,
            "end_reason": outcome,
            "ended_at": now,
        }
    elif moves is not None:
        state |= {
            "step_id": moves.step_id,
            "next_action_at": _from_now(ctx, moves.next_action_at),
            "wait_started_at": _from_now(ctx, moves.wait_started_at),
        }
    cols = [
        literal(journey.id).label("journey_id"),
        literal(journey.audience).label("audience"),
        subject.label("subject_id"),
        account_col.label("account_id"),
        in_holdout.label("holdout"),
    ]
    for name in ("state", "step_id", "next_action_at", "wait_started_at", "outcome", "end_reason"):
        value = state.get(name)
        cols.append(
            (value if isinstance(value, ColumnElement) else literal(value, en.c[name].type)).label(name)
        )
    cols += [
        now.label("entered_at"),
        _or_null(state.get("ended_at"), at).label("ended_at"),
        cast(ref, String).label("trigger_ref"),
        literal(journey.version, en.c.journey_version.type).label("journey_version"),
    ]
    query = select(*cols).select_from(source).where(*where)
    if occurred is not None:
        query = query.group_by(subject, account_col)
    return query


def _from_now(ctx: EvalContext, when: datetime | None) -> ColumnElement[Any] | None:
    """A time of the first moves as an instant relative to `now` (enroll's key holds the offset)."""
    return None if when is None else sql.instant(ctx, when - ctx.now, en.c.next_action_at.type)


def _or_null(value: Any, type_: Any) -> ColumnElement[Any]:
    return value if isinstance(value, ColumnElement) else literal(value, type_)


def _re_entry_allows(
    journey: Journey, subject: ColumnElement[Any], occurred: ColumnElement[Any] | None, ctx: EvalContext
) -> ColumnElement[bool]:
    mine = and_(en.c.journey_id == journey.id, en.c.subject_id == subject)
    rule = journey.spec.re_entry
    if rule == "never":
        return not_(exists(select(literal(1)).select_from(en).where(mine)))
    blocking: list[ColumnElement[bool]] = [en.c.state == vocab.EnrollmentState.ACTIVE]
    if isinstance(rule, ReEntryAfter):
        blocking.append(en.c.entered_at > sql.instant(ctx, -rule.after, en.c.entered_at.type))
    if occurred is not None:  # an occurrence before or during an earlier enrollment is spent
        blocking.append(en.c.ended_at >= occurred)
    return not_(exists(select(literal(1)).select_from(en).where(mine, or_(*blocking))))
