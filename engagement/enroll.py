"""Enroll: who enters a journey at `now`, decided and written in one set-based statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, cast, exists, func, literal, not_, or_, select
from sqlalchemy.sql import ColumnElement

from engagement import holdout
from engagement.conditions import sql
from engagement.conditions.context import EvalContext
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
    "entered_at",
    "trigger_ref",
]


def enroll(
    db: Database, conn: Connection, journey: Journey, ctx: EvalContext, among: Sequence[str] | None = None
) -> int:
    """Enroll every subject the trigger, filter and re-entry rules admit; return how many.

    `among` (subject ids, see incremental.py) limits a condition trigger's evaluation to the subjects
    whose answer may have changed since the journey's last evaluation.
    """
    limit = None if among is None else database.among(conn, sql.subjects_from(journey.audience)[1], among)
    query = candidates(journey, ctx, limit)
    return db.insert_from_select(conn, schema.enrollments, COLUMNS, query)


def candidates(journey: Journey, ctx: EvalContext, limit: ColumnElement[bool] | None = None) -> Any:
    """SELECT of the enrollment rows to insert (one per admitted subject)."""
    source, subject = sql.subjects_from(journey.audience)
    account_col = schema.accounts.c.id
    trigger = journey.spec.trigger
    now = ctx.now
    occurred: ColumnElement[Any] | None = None
    ref: ColumnElement[Any] = literal(None)
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
            e.c.timestamp <= now,
            e.c.timestamp > now - journey.spec.lookback,
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
            m.c.reached_at <= now,
            m.c.reached_at > now - journey.spec.lookback,
        ]
        occurred = m.c.reached_at
    elif journey.trigger is not None:
        where.append(sql.compile_condition(journey.trigger, ctx))
        if limit is not None:  # event and milestone triggers read an indexed window: cheap already
            where.insert(0, limit)
    for cond in (journey.filter,):
        if cond is not None:
            where.append(sql.compile_condition(cond, ctx))
    for cond in (journey.goal, journey.exit):  # already there: nothing to move
        if cond is not None:
            where.append(not_(sql.compile_condition(cond, ctx)))
    where.append(_re_entry_allows(journey, subject, occurred, now))
    key = literal(journey.id + ":") + subject
    in_holdout = holdout.Bucket(key) < int(journey.holdout * holdout.SPACE)
    first_step = journey.program[0].step_id
    cols = [
        literal(journey.id).label("journey_id"),
        literal(journey.audience).label("audience"),
        subject.label("subject_id"),
        account_col.label("account_id"),
        in_holdout.label("holdout"),
        literal("active").label("state"),
        literal(first_step).label("step_id"),
        literal(now, schema.enrollments.c.next_action_at.type).label("next_action_at"),
        literal(now, schema.enrollments.c.entered_at.type).label("entered_at"),
        cast(ref, String).label("trigger_ref"),
    ]
    query = select(*cols).select_from(source).where(*where)
    if occurred is not None:
        query = query.group_by(subject, account_col)
    return query


def _re_entry_allows(
    journey: Journey, subject: ColumnElement[Any], occurred: ColumnElement[Any] | None, now: datetime
) -> ColumnElement[bool]:
    en = schema.enrollments
    mine = and_(en.c.journey_id == journey.id, en.c.subject_id == subject)
    rule = journey.spec.re_entry
    if rule == "never":
        return not_(exists(select(literal(1)).select_from(en).where(mine)))
    blocking: list[ColumnElement[bool]] = [en.c.state == "active"]
    if isinstance(rule, ReEntryAfter):
        blocking.append(en.c.entered_at > now - rule.after)
    if occurred is not None:  # an occurrence before or during an earlier enrollment is spent
        blocking.append(en.c.ended_at >= occurred)
    return not_(exists(select(literal(1)).select_from(en).where(mine, or_(*blocking))))
