"""Advance due enrollments: end them on goal or exit, wake waiters, step the due ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, exists, literal, null, select, update
from sqlalchemy.sql import ColumnElement, FromClause

from engagement import vocab
from engagement.conditions import ast, sql
from engagement.conditions.context import EvalContext
from engagement.delivery.ids import DeliveryId
from engagement.evaluation import statements, stepper, variants
from engagement.journeys.catalog import Journey
from engagement.journeys.program import Message, Notify, Survey, WaitUntil
from engagement.store import database, schema
from engagement.store.database import Database

en = schema.enrollments
NOW = timedelta(0)


@dataclass
class Advanced:
    """What one pass over due enrollments did."""

    stepped: int = 0
    queued: int = 0
    completed: int = 0


def holding(
    conn: Connection, journey: Journey, ids: Sequence[str], cond: ast.Condition, ctx: EvalContext
) -> set[str]:
    """Which of these subjects satisfy `cond` now (one set-based query)."""

    def build() -> Any:
        source, subject = sql.subjects_from(journey.audience)
        return (
            select(subject)
            .select_from(source)
            .where(subject.in_(bindparam("ids", expanding=True)), sql.compile_condition(cond, ctx))
        )

    found = statements.run(conn, ("holding", ctx.rules, cond), journey, [ctx], build, {"ids": list(ids)})
    return set(found.scalars())


def end_on_goal_and_exit(
    conn: Connection, journey: Journey, ctx: EvalContext, among: Sequence[str] | None = None
) -> tuple[int, int]:
    """Set-based: active enrollments whose subject reached the goal convert; exit ends the rest.

    Driven by the journey's active enrollments (limited to subjects in `among` when given: see
    incremental.py), never by a pass over every subject.
    """
    if among is not None and not among:
        return 0, 0  # no subject's answer can have changed
    counts = []
    dialect = conn.dialect.name
    for cond, outcome in (
        (journey.goal, vocab.EnrollmentOutcome.CONVERTED),
        (journey.exit, vocab.EnrollmentOutcome.EXITED),
    ):
        if cond is None:
            counts.append(0)
            continue

        def build(cond: ast.Condition = cond, outcome: str = outcome) -> Any:
            where = [
                en.c.journey_id == journey.id,
                en.c.state == vocab.EnrollmentState.ACTIVE,
                _subject_holds(journey, cond, ctx),
            ]
            if among is not None:
                where.insert(2, database.among_param(dialect, en.c.subject_id, "among"))
            return (
                update(en)
                .where(*where)
                .values(
                    state=vocab.EnrollmentState.ENDED,
                    outcome=outcome,
                    end_reason=outcome,
                    ended_at=sql.instant(ctx, NOW, en.c.ended_at.type),
                    next_action_at=None,
                )
            )

        params = {} if among is None else {"among": database.among_value(dialect, among)}
        shape = ("end", ctx.rules, outcome, among is None)
        result = statements.run(conn, shape, journey, [ctx], build, params)
        counts.append(int(result.rowcount or 0))
    return counts[0], counts[1]


def wake_waiters(conn: Connection, journey: Journey, ctx: EvalContext) -> int:
    """Make enrollments waiting on a now-true `wait_until` due at once (driven by the waiting ones)."""
    woken = 0
    for instr in journey.program:
        if not isinstance(instr, WaitUntil):
            continue

        def build(instr: WaitUntil = instr) -> Any:
            now = sql.instant(ctx, NOW, en.c.next_action_at.type)
            return (
                update(en)
                .where(
                    en.c.journey_id == journey.id,
                    en.c.state == vocab.EnrollmentState.ACTIVE,
                    en.c.step_id == instr.step_id,
                    (en.c.next_action_at.is_(None)) | (en.c.next_action_at > now),
                    _subject_holds(journey, instr.condition, ctx),
                )
                .values(next_action_at=now)
            )

        result = statements.run(
            conn, ("wake", ctx.rules, instr.step_id, instr.condition), journey, [ctx], build
        )
        woken += int(result.rowcount or 0)
    return woken


def _subject_holds(journey: Journey, cond: ast.Condition, ctx: EvalContext) -> ColumnElement[bool]:
    """EXISTS: the enrollment's subject satisfies `cond` (correlated with the enrollment row)."""
    source, subject = sql.subjects_from(journey.audience)
    return exists(
        select(literal(1))
        .select_from(source)
        .where(subject == en.c.subject_id, sql.compile_condition(cond, ctx))
    )


def due(journey_id: str, now: datetime | ColumnElement[Any], limit: int) -> Any:
    """The next due enrollments of one journey, oldest first (served by `ix_enrollment_due`)."""
    return (
        select(
            en.c.id,
            en.c.subject_id,
            en.c.account_id,
            en.c.holdout,
            en.c.step_id,
            en.c.wait_started_at,
            en.c.next_action_at,
        )
        .where(
            en.c.journey_id == journey_id,
            en.c.state == vocab.EnrollmentState.ACTIVE,
            en.c.next_action_at <= now,
        )
        .order_by(en.c.next_action_at, en.c.id)
        .limit(limit)
    )


def advance_batch(
    db: Database, conn: Connection, journey: Journey, ctx: EvalContext, limit: int
) -> Advanced | None:
    """Step up to `limit` due enrollments; None when nothing was due.

    A decision depends only on the step, the wait and due times, what holds for the subject and the
    holdout flag, so due enrollments are grouped by those, `stepper.decide` runs once per group, and each
    group is written set-based: one UPDATE for its enrollments and one INSERT … SELECT per message queued.
    """

    def claim() -> Any:
        return due(journey.id, sql.instant(ctx, NOW, en.c.next_action_at.type), limit).with_for_update(
            skip_locked=True
        )

    rows = statements.run(conn, ("due", limit), journey, [ctx], claim).all()
    if not rows:
        return None
    conditions = list(set(journey.conditions()))
    subjects = [r.subject_id for r in rows]
    truth = [holding(conn, journey, subjects, cond, ctx) for cond in conditions]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        held = tuple(row.subject_id in t for t in truth)
        key = (row.step_id, row.wait_started_at, row.next_action_at, row.holdout, held)
        groups.setdefault(key, []).append(row.id)
    result = Advanced(stepped=len(rows))
    dialect = conn.dialect.name
    chosen = ("chosen", database.among_param(dialect, en.c.id, "chosen"))
    for (step_id, wait_started_at, due_since, in_holdout, held), ids in groups.items():
        picked = {"chosen": database.among_value(dialect, ids)}
        position = journey.position(step_id)
        if position is None:
            _write(conn, picked, _ended(vocab.EnrollmentOutcome.EXITED, "step removed from journey", ctx.now))
            continue
        decision = stepper.decide(
            journey.program,
            position,
            wait_started_at,
            ctx.now,
            dict(zip(conditions, held, strict=True)).__getitem__,
            holdout=in_holdout,
            due_since=due_since,
        )
        for instr, moment in decision.messages:
            result.queued += queue(db, conn, journey, instr, chosen, moment, ctx, picked)
        if decision.outcome is not None:
            _write(conn, picked, _ended(decision.outcome, decision.outcome, ctx.now))
            result.completed += len(ids)
        else:
            parked = {
                "step_id": decision.step_id,
                "next_action_at": decision.next_action_at,
                "wait_started_at": decision.wait_started_at,
                "state": vocab.EnrollmentState.ACTIVE,
                "outcome": None,
                "end_reason": None,
                "ended_at": None,
            }
            _write(conn, picked, parked)
    return result


def queue(
    db: Database,
    conn: Connection,
    journey: Journey,
    instr: Message,
    chosen: tuple[str, ColumnElement[bool]],
    due: datetime,
    ctx: EvalContext,
    params: dict[str, Any],
) -> int:
    """Queue one message for the enrollments `chosen` (its name and clause, whose parameters are in
    `params`) selects; return how many were queued."""
    name, clause = chosen

    def build() -> Any:
        return db.insert_select(
            schema.deliveries, DELIVERY_COLUMNS, deliveries(journey, instr, clause, due, ctx)
        )

    shape = ("queue", ctx.rules, instr.step_id, due - ctx.now, name)
    stmt, values = statements.prepared(conn, shape, journey, [ctx], build)
    return db.inserted(conn, stmt, values | params, kept=True)


DELIVERY_COLUMNS = [
    "id",
    "enrollment_id",
    "journey_id",
    "step_id",
    "channel",
    "recipient",
    "contact_id",
    "status",
    "priority",
    "due_at",
    "created_at",
    "updated_at",
    "survey_kind",
    "journey_version",
    "variant",
]


WRITTEN = ("step_id", "next_action_at", "wait_started_at", "state", "outcome", "end_reason", "ended_at")


def _write(conn: Connection, picked: dict[str, Any], values: dict[str, Any]) -> None:
    """Set `values` (every column of WRITTEN) on the enrollments `picked` names."""

    def build() -> Any:
        chosen = database.among_param(conn.dialect.name, en.c.id, "chosen")
        columns = {name: bindparam(f"set_{name}", type_=en.c[name].type) for name in WRITTEN}
        return update(en).where(chosen).values(columns)

    params = picked | {f"set_{name}": values[name] for name in WRITTEN}
    statements.run(conn, ("write",), None, [], build, params)


def _ended(outcome: str, reason: str, now: datetime) -> dict[str, Any]:
    return {
        "step_id": None,
        "next_action_at": None,
        "wait_started_at": None,
        "state": vocab.EnrollmentState.ENDED,
        "outcome": outcome,
        "end_reason": reason,
        "ended_at": now,
    }


def deliveries(
    journey: Journey, instr: Message, chosen: ColumnElement[bool], due: datetime, ctx: EvalContext
) -> Any:
    """SELECT of the delivery rows of one message for the `chosen` enrollments (account ones fan out to
    recipients)."""
    source: FromClause = en
    where: list[ColumnElement[bool]] = [chosen]
    contact: ColumnElement[Any] = en.c.subject_id if journey.audience == "contact" else null()
    if isinstance(instr, Notify):
        recipient: ColumnElement[Any] = literal(f"webhook:{instr.spec.webhook}")
    elif journey.audience == "contact":
        recipient = en.c.subject_id
    else:
        c = schema.contacts.c
        people, _ = sql.subjects_from("contact")
        source = en.join(people, c.account_id == en.c.subject_id)
        where.append(c.erased_at.is_(None))
        if journey.recipients is not None:
            contact_ctx = ctx.for_contacts()
            where.append(sql.compile_condition(journey.recipients, contact_ctx))
        recipient = contact = c.id
    at = schema.deliveries.c.due_at.type
    now = sql.instant(ctx, NOW, at)
    cols = [
        DeliveryId(en.c.id, literal(instr.step_id), recipient),
        en.c.id,
        literal(journey.id),
        literal(instr.step_id),
        literal(instr.channel.value),
        recipient,
        contact,
        literal(vocab.DeliveryStatus.QUEUED.value),
        literal(journey.spec.priority),
        sql.instant(ctx, due - ctx.now, at),
        now,
        now,
        literal(instr.spec.kind if isinstance(instr, Survey) else None, schema.deliveries.c.survey_kind.type),
        literal(journey.version, schema.deliveries.c.journey_version.type),
        variants.chosen_sql(journey.id, instr, recipient),
    ]
    return select(*cols).select_from(source).where(*where)
