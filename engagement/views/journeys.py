"""The journeys as CS ops see them: per journey and per step, who is there now, who entered, who converted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, case, func, null, select

from engagement import durations, vocab
from engagement.journeys.catalog import Catalog, Journey
from engagement.journeys.program import Branch, Jump, Message, Wait, WaitUntil
from engagement.store import schema

PAGE = 50  # people listed at a step, a page
en = schema.enrollments
d = schema.deliveries
SENT = (vocab.DeliveryStatus.SENT, vocab.DeliveryStatus.DELIVERED)


@dataclass(frozen=True)
class Step:
    """One step of a journey as drawn: its id, what it does, who is at it now and how many were sent it."""

    step_id: str
    kind: str
    detail: str
    active: int = 0
    sent: int = 0


@dataclass
class Summary:
    """One journey's line on /journeys, and the head of its own page."""

    journey_id: str
    name: str
    status: str
    audience: str
    entered: int = 0
    holdout: int = 0
    converted: int = 0
    active: int = 0
    steps: list[Step] = field(default_factory=list)

    @property
    def conversion(self) -> float | None:
        """Converted over entered outside the holdout (None before anyone entered)."""
        treated = self.entered - self.holdout
        return None if treated <= 0 else self.converted / treated


@dataclass(frozen=True)
class Person:
    """Someone at a step: the enrollment and who it is."""

    subject_id: str
    name: str
    email: str | None
    account_id: str | None
    entered_at: Any
    next_action_at: Any
    holdout: bool


def steps_of(journey: Journey) -> list[tuple[str, str, str]]:
    """(step id, kind, detail) of every step a person can stand at, in file order."""
    found = []
    for instr in journey.program:
        if isinstance(instr, Jump):
            continue
        if isinstance(instr, Wait):
            detail = f"wait {durations.format_duration(instr.duration)}"
        elif isinstance(instr, WaitUntil):
            detail = "wait until a condition" + (
                f", at most {durations.format_duration(instr.timeout)}" if instr.timeout else ""
            )
        elif isinstance(instr, Branch):
            detail = "branch"
        elif isinstance(instr, Message):
            detail = str(instr.kind)
        else:
            detail = instr.kind
        found.append((instr.step_id, str(instr.kind), detail))
    return found


def summaries(conn: Connection, catalog: Catalog, only: str | None = None) -> list[Summary]:
    """Every journey (or one) with its counts: three grouped statements for all of them."""
    wanted = [j for j in catalog.journeys.values() if only is None or j.id == only]
    ids = [j.id for j in wanted]
    totals = conn.execute(
        select(
            en.c.journey_id,
            func.count(),
            func.sum(case((en.c.holdout, 1), else_=0)),
            func.sum(case((en.c.outcome == vocab.EnrollmentOutcome.CONVERTED, 1), else_=0)),
            func.sum(case((en.c.state == vocab.EnrollmentState.ACTIVE, 1), else_=0)),
        )
        .where(en.c.journey_id.in_(ids))
        .group_by(en.c.journey_id)
    ).all()
    at_step = conn.execute(
        select(en.c.journey_id, en.c.step_id, func.count())
        .where(en.c.journey_id.in_(ids), en.c.state == vocab.EnrollmentState.ACTIVE)
        .group_by(en.c.journey_id, en.c.step_id)
    ).all()
    sent = conn.execute(
        select(d.c.journey_id, d.c.step_id, func.count())
        .where(d.c.journey_id.in_(ids), d.c.status.in_(SENT))
        .group_by(d.c.journey_id, d.c.step_id)
    ).all()
    by_total = {row[0]: row for row in totals}
    active = {(j, s): int(n) for j, s, n in at_step}
    sends = {(j, s): int(n) for j, s, n in sent}
    found = []
    for journey in wanted:
        row = by_total.get(journey.id)
        summary = Summary(journey.id, journey.spec.name, journey.status, journey.audience)
        if row is not None:
            summary.entered, summary.holdout = int(row[1]), int(row[2] or 0)
            summary.converted, summary.active = int(row[3] or 0), int(row[4] or 0)
        summary.steps = [
            Step(s, kind, detail, active.get((journey.id, s), 0), sends.get((journey.id, s), 0))
            for s, kind, detail in steps_of(journey)
        ]
        found.append(summary)
    return found


def people_at(conn: Connection, journey: Journey, step_id: str, page: int) -> tuple[list[Person], int]:
    """The active enrollments at one step, PAGE a page (1-based), with how many there are in all."""
    c, a = schema.contacts, schema.accounts
    where = [
        en.c.journey_id == journey.id,
        en.c.state == vocab.EnrollmentState.ACTIVE,
        en.c.step_id == step_id,
    ]
    total = int(conn.execute(select(func.count()).select_from(en).where(*where)).scalar_one())
    if journey.audience == "account":
        query = select(*en.c, a.c.name.label("name"), null().label("email")).join(
            a, a.c.id == en.c.subject_id, isouter=True
        )
    else:
        name = (c.c.first_name + " " + c.c.last_name).label("name")
        query = select(*en.c, name, c.c.email.label("email")).join(c, c.c.id == en.c.subject_id, isouter=True)
    rows = conn.execute(
        query.where(*where).order_by(en.c.entered_at, en.c.id).limit(PAGE).offset((page - 1) * PAGE)
    ).mappings()
    people = [
        Person(
            r["subject_id"],
            (r["name"] or "").strip(),
            r["email"],
            r["account_id"],
            r["entered_at"],
            r["next_action_at"],
            bool(r["holdout"]),
        )
        for r in rows
    ]
    return people, total
