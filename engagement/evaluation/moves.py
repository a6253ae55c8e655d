"""When a journey file changes, people at steps it no longer has move on: decided, written set-based, logged.

Each tick compares a journey's steps with the outline the database recorded when it last ran it. An
active enrollment whose step id is gone goes, in this order:
1. where the file's `moved: {OLD: NEW}` says;
2. to the same step under its new id, when only an unnamed step's anchor changed (`rescue` in
   journeys/program.py);
3. to the removed step's next surviving step in the recorded outline (none left: it completes);
4. for an id of the positional form earlier versions stored (`wait@1`), to the step at that place in
   the file (the first tick after the upgrade, before any outline was recorded);
5. else it ends, as before, `exited` with "step removed from journey".
Every move and end is a row in `enrollment_move` and a line in the tick's report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, literal, select, update
from sqlalchemy.sql import ColumnElement

from engagement import vocab
from engagement.journeys import program
from engagement.journeys.catalog import Journey
from engagement.store import schema
from engagement.store.database import Database

OUTLINE = 1  # the outline format's version
REMOVED = "step removed"
en, moves_log, journeys = schema.enrollments, schema.enrollment_moves, schema.journeys


@dataclass(frozen=True)
class Target:
    """Where the enrollments at one vanished step go."""

    step_id: str | None  # None: they end
    reason: str
    same_step: bool = False  # the step itself is still there: its wait goes on as it was
    outcome: vocab.EnrollmentOutcome = vocab.EnrollmentOutcome.COMPLETED  # when they end


@dataclass(frozen=True)
class Move:
    """How many enrollments of one journey left one step, where to, and why."""

    journey_id: str
    from_step: str
    to_step: str | None
    reason: str
    count: int

    def __str__(self) -> str:
        if self.to_step is None:
            return f"{self.journey_id}: ended {self.count} at {self.from_step!r} ({self.reason})"
        return f"{self.journey_id}: moved {self.count} from {self.from_step!r} to {self.to_step!r} ({self.reason})"


def outline(journey: Journey) -> dict[str, Any]:
    """What a later version of the file needs to place people at this version's steps."""
    steps = journey.program

    def onward(index: int) -> str | None:
        while index < len(steps) and steps[index].kind == "jump":
            index = steps[index].next
        return steps[index].step_id if index < len(steps) else None

    return {
        "v": OUTLINE,
        "steps": [
            {"id": i.step_id, "next": onward(program.after(steps, i)), "rescue": i.rescue}
            for i in steps
            if i.kind != "jump"
        ],
    }


def resolve(old: str, recorded: dict[str, Any] | None, journey: Journey) -> Target:
    """Where enrollments at `old`, a step id this version of the journey lacks, go (pure)."""
    if old in journey.spec.moved:
        return Target(journey.spec.moved[old], "as the file's moved: says")
    ids = {i.step_id for i in journey.program}
    rescued = {i.rescue: i.step_id for i in journey.program if i.rescue is not None}
    entries = {e["id"]: e for e in (recorded or {}).get("steps", [])} if readable(recorded) else {}
    entry = entries.get(old)
    if entry is not None:
        if entry["rescue"] in rescued:
            return Target(rescued[entry["rescue"]], "same step, new id", same_step=True)
        seen = {old}
        following = entry["next"]
        while following is not None and following not in seen:
            if following in ids:
                return Target(following, REMOVED)
            nxt = entries.get(following)
            if nxt is None:
                break
            if nxt["rescue"] in rescued:
                return Target(rescued[nxt["rescue"]], REMOVED)
            seen.add(following)
            following = nxt["next"]
        return Target(None, f"{REMOVED}, nothing after it")
    legacy = {program.legacy_id(i): i.step_id for i in journey.program}
    if old in legacy:
        return Target(legacy[old], "step id upgraded", same_step=True)
    return Target(None, "step removed from journey", outcome=vocab.EnrollmentOutcome.EXITED)


def readable(recorded: dict[str, Any] | None) -> bool:
    """The recorded outline is one this version of the code reads."""
    return isinstance(recorded, dict) and recorded.get("v") == OUTLINE


def apply(db: Database, conn: Connection, journey: Journey, now: datetime, recorded: Any) -> list[Move]:
    """Move (or end) the journey's active enrollments at steps it lost, then record its outline.

    `recorded` is the outline the database holds (`journey.steps`, read under the journey's lock with
    its other first reads: incremental.start). Reads the journey's active enrollments only when the outline
    differs from it, so an unchanged journey costs nothing more. Call under the journey's lock (tick.py).
    """
    current = outline(journey)
    if recorded == current:
        return []
    ids = [i.step_id for i in journey.program]
    active = [en.c.journey_id == journey.id, en.c.state == vocab.EnrollmentState.ACTIVE]
    stale = conn.execute(
        select(en.c.step_id, func.count())
        .where(*active, en.c.step_id.is_not(None), en.c.step_id.not_in(ids))
        .group_by(en.c.step_id)
        .order_by(en.c.step_id)
    ).all()
    done: list[Move] = []
    for old, count in stale:
        target = resolve(old, recorded, journey)
        at = [*active, en.c.step_id == old]
        log = select(
            en.c.id,
            literal(journey.id),
            literal(old),
            literal(target.step_id, moves_log.c.to_step.type),
            literal(target.reason),
            literal(journey.version),
            literal(now, moves_log.c.moved_at.type),
        ).where(*at)
        columns = [
            "enrollment_id",
            "journey_id",
            "from_step",
            "to_step",
            "reason",
            "journey_version",
            "moved_at",
        ]
        db.insert_from_select(conn, moves_log, columns, log)
        conn.execute(update(en).where(*at).values(_values(target, now)))
        done.append(Move(journey.id, old, target.step_id, target.reason, int(count)))
    conn.execute(update(journeys).where(journeys.c.id == journey.id).values(steps=current))
    return done


def _values(target: Target, now: datetime) -> dict[str, Any]:
    if target.step_id is None:
        outcome: ColumnElement[str] = literal(target.outcome.value)
        if (
            target.outcome == vocab.EnrollmentOutcome.COMPLETED
        ):  # as running out of steps ends a holdout enrollment
            outcome = case((en.c.holdout, literal(vocab.EnrollmentOutcome.HOLDOUT.value)), else_=outcome)
        ended = {
            "state": vocab.EnrollmentState.ENDED,
            "outcome": outcome,
            "end_reason": target.reason,
            "ended_at": now,
        }
        return {**ended, "step_id": None, "next_action_at": None, "wait_started_at": None}
    if target.same_step:
        return {"step_id": target.step_id}
    return {"step_id": target.step_id, "next_action_at": now, "wait_started_at": None}
