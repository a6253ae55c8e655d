"""Advance due enrollments: end them on goal or exit, wake waiters, step the due ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, literal, select, update
from sqlalchemy.sql import ColumnElement

from engagement import stepper
from engagement.conditions import ast, sql
from engagement.conditions.context import EvalContext
from engagement.journeys.catalog import Journey
from engagement.journeys.program import Instr
from engagement.store import database, schema
from engagement.store.database import Database

DELIVERY_NAMESPACE = uuid.UUID("6f1c3c8e-3f57-4c2e-9d1e-2b7f0f5a9c11")
en = schema.enrollments


@dataclass
class Advanced:
    """What one pass over due enrollments did."""

    stepped: int = 0
    queued: int = 0
    completed: int = 0


def delivery_id(enrollment_id: int, step_id: str, recipient: str) -> str:
    """The deterministic id of a delivery (carried in provider metadata)."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{enrollment_id}:{step_id}:{recipient}"))


def holding(
    conn: Connection, journey: Journey, ids: Sequence[str], cond: ast.Condition, ctx: EvalContext
) -> set[str]:
    """Which of these subjects satisfy `cond` now (one set-based query)."""
    source, subject = sql.subjects_from(journey.audience)
    stmt = select(subject).select_from(source).where(subject.in_(list(ids)), sql.compile_condition(cond, ctx))
    return set(conn.execute(stmt).scalars())


def end_on_goal_and_exit(
    conn: Connection, journey: Journey, ctx: EvalContext, among: Sequence[str] | None = None
) -> tuple[int, int]:
    """Set-based: active enrollments whose subject reached the goal convert; exit ends the rest.

    Driven by the journey's active enrollments (limited to subjects in `among` when given: see
    incremental.py), never by a pass over every subject.
    """
    counts = []
    for cond, outcome in ((journey.goal, "converted"), (journey.exit, "exited")):
        if cond is None:
            counts.append(0)
            continue
        where = [en.c.journey_id == journey.id, en.c.state == "active", _subject_holds(journey, cond, ctx)]
        if among is not None:
            where.insert(2, database.among(conn, en.c.subject_id, among))
        result = conn.execute(
            update(en)
            .where(*where)
            .values(state="ended", outcome=outcome, end_reason=outcome, ended_at=ctx.now, next_action_at=None)
        )
        counts.append(int(result.rowcount or 0))
    return counts[0], counts[1]


def wake_waiters(conn: Connection, journey: Journey, ctx: EvalContext) -> int:
    """Make enrollments waiting on a now-true `wait_until` due at once (driven by the waiting ones)."""
    woken = 0
    for instr in journey.program:
        if instr.kind != "wait_until" or instr.condition is None:
            continue
        result = conn.execute(
            update(en)
            .where(
                en.c.journey_id == journey.id,
                en.c.state == "active",
                en.c.step_id == instr.step_id,
                (en.c.next_action_at.is_(None)) | (en.c.next_action_at > ctx.now),
                _subject_holds(journey, instr.condition, ctx),
            )
            .values(next_action_at=ctx.now)
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


def due(journey_id: str, now: datetime, limit: int) -> Any:
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
        .where(en.c.journey_id == journey_id, en.c.state == "active", en.c.next_action_at <= now)
        .order_by(en.c.next_action_at, en.c.id)
        .limit(limit)
    )


def advance_batch(
    db: Database, conn: Connection, journey: Journey, ctx: EvalContext, limit: int
) -> Advanced | None:
    """Step up to `limit` due enrollments; None when nothing was due."""
    rows = conn.execute(due(journey.id, ctx.now, limit).with_for_update(skip_locked=True)).all()
    if not rows:
        return None
    ids = [r.subject_id for r in rows]
    truth = {cond: holding(conn, journey, ids, cond, ctx) for cond in set(journey.conditions())}
    recipients = _recipients(conn, journey, ids, ctx) if journey.audience == "account" else {}
    result = Advanced(stepped=len(rows))
    updates: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for row in rows:
        position = journey.position(row.step_id)
        if position is None:
            updates.append(_ended(row.id, "exited", "step removed from journey", ctx.now))
            continue
        decision = stepper.decide(
            journey.program,
            position,
            row.wait_started_at,
            ctx.now,
            _holds(truth, row.subject_id),
            holdout=row.holdout,
            due_since=row.next_action_at,
        )
        for instr, moment in decision.messages:
            for recipient, contact_id in _targets(journey, instr, row, recipients):
                deliveries.append(_delivery(journey, instr, row.id, recipient, contact_id, moment, ctx.now))
        if decision.outcome is not None:
            updates.append(_ended(row.id, decision.outcome, decision.outcome, ctx.now))
            result.completed += 1
        else:
            updates.append(
                {
                    "_id": row.id,
                    "step_id": decision.step_id,
                    "next_action_at": decision.next_action_at,
                    "wait_started_at": decision.wait_started_at,
                    "state": "active",
                    "outcome": None,
                    "end_reason": None,
                    "ended_at": None,
                }
            )
    if deliveries:
        result.queued = db.insert_ignore(
            conn, schema.deliveries, deliveries, ["enrollment_id", "step_id", "recipient"]
        )
    db.update_by_id(conn, en, updates)
    return result


def _holds(truth: dict[ast.Condition, set[str]], subject: str) -> Callable[[ast.Condition], bool]:
    return lambda cond: subject in truth[cond]


def _ended(enrollment_id: int, outcome: str, reason: str, now: datetime) -> dict[str, Any]:
    return {
        "_id": enrollment_id,
        "step_id": None,
        "next_action_at": None,
        "wait_started_at": None,
        "state": "ended",
        "outcome": outcome,
        "end_reason": reason,
        "ended_at": now,
    }


def _recipients(
    conn: Connection, journey: Journey, account_ids: Sequence[str], ctx: EvalContext
) -> dict[str, list[str]]:
    c = schema.contacts.c
    source, _ = sql.subjects_from("contact")
    where: list[ColumnElement[bool]] = [c.account_id.in_(list(account_ids)), c.erased_at.is_(None)]
    if journey.recipients is not None:
        contact_ctx = EvalContext(ctx.now, "contact", ctx.half_life_days, ctx.green, ctx.yellow)
        where.append(sql.compile_condition(journey.recipients, contact_ctx))
    found: dict[str, list[str]] = {}
    for contact_id, account_id in conn.execute(
        select(c.id, c.account_id).select_from(source).where(and_(*where)).order_by(c.id)
    ):
        found.setdefault(account_id, []).append(contact_id)
    return found


def _targets(
    journey: Journey, instr: Instr, row: Any, recipients: dict[str, list[str]]
) -> list[tuple[str, str | None]]:
    if instr.kind == "notify":
        contact = row.subject_id if journey.audience == "contact" else None
        return [(f"webhook:{instr.spec.webhook}", contact)]
    if journey.audience == "contact":
        return [(row.subject_id, row.subject_id)]
    return [(cid, cid) for cid in recipients.get(row.subject_id, [])]


def _delivery(
    journey: Journey,
    instr: Instr,
    enrollment_id: int,
    recipient: str,
    contact_id: str | None,
    due: datetime,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": delivery_id(enrollment_id, instr.step_id, recipient),
        "enrollment_id": enrollment_id,
        "journey_id": journey.id,
        "step_id": instr.step_id,
        "channel": instr.kind,
        "recipient": recipient,
        "contact_id": contact_id,
        "status": "queued",
        "priority": journey.spec.priority,
        "due_at": due,
        "created_at": now,
        "updated_at": now,
    }
