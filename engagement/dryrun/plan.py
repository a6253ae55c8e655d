"""`engagement plan`: what the journey files would change, against what the database last ran, before it runs.

Per journey: the steps added, removed and changed (which of their keys), where the people waiting at a
removed step go, how many subjects would enter now under a changed entry rule, how many a changed goal
or exit ends, and how many messages the next tick queues at each changed step. The counts come from the
tick's own code (evaluation/tick.evaluate) run in one transaction that is then rolled back: nothing is
written, and the numbers are the ones the next tick applies at the same instant.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from engagement import vocab
from engagement.config import Settings
from engagement.evaluation import moves, tick
from engagement.journeys import versions
from engagement.journeys.catalog import Catalog, Journey
from engagement.journeys.program import MESSAGE_KINDS
from engagement.store import schema
from engagement.store.database import Database

MOVES = 2  # the exit code when the change moves or ends enrollments: CI asks a human
Change = vocab.PlanChange
en, deliveries, journeys, kept = (
    schema.enrollments,
    schema.deliveries,
    schema.journeys,
    schema.journey_versions,
)


@dataclass(frozen=True)
class StepChange:
    """One step the new version adds, removes or changes."""

    step_id: str
    change: vocab.PlanChange
    fields: tuple[str, ...] = ()  # changed: its keys that differ (`email.subject`, `wait`, `if`)
    waiting: int = 0  # active enrollments at the step now (removed: they all move or end)
    to_step: str | None = None  # removed: where they go; None when they end
    reason: str | None = None  # removed: why there (moves.py)
    queued: int | None = None  # a message step of the new version: messages the next tick queues at it

    def as_json(self) -> dict[str, Any]:
        """The step change as `plan --format json` prints it."""
        return {
            "id": self.step_id,
            "change": self.change.value,
            "fields": list(self.fields),
            "waiting": self.waiting,
            "to": self.to_step,
            "reason": self.reason,
            "queued": self.queued,
        }


@dataclass
class JourneyPlan:
    """What the file does to one journey."""

    journey_id: str
    change: vocab.PlanChange
    from_version: str | None
    to_version: str
    steps: list[StepChange] = field(default_factory=list)
    entry: list[str] = field(default_factory=list)  # the entry rules that changed (trigger, filter…)
    entering: int | None = None  # subjects entering now, when the journey is new or an entry rule changed
    converted: int | None = None  # when the goal changed: active enrollments it ends as converted now
    exited: int | None = None  # when the exit changed: active enrollments it ends now
    compared: bool = True  # False: the version last run was not kept (run before versions were), so its
    # entry rules and step keys are unknown: every entry rule counts as changed, steps by id only

    @property
    def moves_people(self) -> bool:
        """Enrollments in flight move or end because of this change."""
        moved = any(s.change == Change.REMOVED and s.waiting for s in self.steps)
        return moved or bool(self.converted) or bool(self.exited)

    def as_json(self) -> dict[str, Any]:
        """The journey's plan as `plan --format json` prints it."""
        return {
            "id": self.journey_id,
            "change": self.change.value,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "moves_people": self.moves_people,
            "compared": self.compared,
            "steps": [s.as_json() for s in self.steps],
            "entry": {
                "changed": self.entry,
                "entering": self.entering,
                "converted": self.converted,
                "exited": self.exited,
            },
        }


@dataclass(frozen=True)
class Gone:
    """A journey the database ran that no file has now: its active enrollments stay where they are."""

    journey_id: str
    active: int


@dataclass
class Plan:
    """The plan for every journey file, at one instant."""

    at: datetime
    journeys: list[JourneyPlan]
    gone: list[Gone] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when nothing moves or ends enrollments, MOVES when something does."""
        return MOVES if any(j.moves_people for j in self.journeys) else 0

    def as_json(self) -> dict[str, Any]:
        """The whole plan as `plan --format json` prints it (the shape docs/operations.md documents)."""
        return {
            "at": self.at.isoformat(),
            "changes": any(j.change not in (Change.UNCHANGED, Change.DRAFT) for j in self.journeys),
            "exit_code": self.exit_code,
            "journeys": [j.as_json() for j in self.journeys],
            "gone": [{"id": g.journey_id, "active": g.active} for g in self.gone],
        }


def plan(db: Database, settings: Settings, catalog: Catalog, now: datetime, *, every: bool = True) -> Plan:
    """The plan for every journey in `catalog` at `now`; `every`: the catalog is the whole journeys folder,
    so a journey the database ran that it lacks is reported as gone."""
    with db.engine.connect() as conn:
        recorded = {
            r.id: r for r in conn.execute(select(journeys.c.id, journeys.c.version, journeys.c.steps))
        }
        pairs = [(r.id, r.version) for r in recorded.values()]
        shapes = {}
        if pairs:
            found = select(kept.c.journey_id, kept.c.shape).where(
                tuple_(kept.c.journey_id, kept.c.version).in_(pairs)
            )
            shapes = {row.journey_id: row.shape for row in conn.execute(found)}
        gone = []
        if every:
            missing = sorted(set(recorded) - set(catalog.journeys))
            active = _waiting_by_journey(conn, missing)
            gone = [Gone(j, active.get(j, 0)) for j in missing]
    planned = []
    for journey in catalog.journeys.values():
        row = recorded.get(journey.id)
        before = shapes.get(journey.id)
        planned.append(_journey_plan(db, settings, journey, row.version if row else None, before, now))
    return Plan(now, planned, gone)


def _journey_plan(
    db: Database,
    settings: Settings,
    journey: Journey,
    version: str | None,
    before: dict[str, Any] | None,
    now: datetime,
) -> JourneyPlan:
    if journey.status == "draft":
        return JourneyPlan(journey.id, Change.DRAFT, version, journey.version)
    if version == journey.version:
        return JourneyPlan(journey.id, Change.UNCHANGED, version, journey.version)
    after = versions.shape(journey)
    old_entry = (before or {}).get("entry", {})
    entry = [k for k in versions.ENTRY if before is None or old_entry.get(k) != after["entry"].get(k)]
    result = JourneyPlan(
        journey.id, Change.NEW if version is None else Change.CHANGED, version, journey.version
    )
    result.entry = entry if version is not None else []
    result.compared = before is not None or version is None
    run = _dry_run(db, settings, journey, now)
    old_steps: dict[str, dict[str, Any] | None] = dict(versions.steps(before)) if before is not None else {}
    if before is None and version is not None and moves.readable(run.outline):
        # a version run before versions were kept: its step ids are known (the outline), not their keys
        old_steps = {e["id"]: None for e in run.outline["steps"]} if run.outline else {}
    new_steps = versions.steps(after)
    moved = {m.from_step: m for m in run.moves}
    for step_id, written in new_steps.items():
        queued = run.queued.get(step_id, 0) if written["kind"] in MESSAGE_KINDS else None
        if step_id not in old_steps:
            if version is not None:
                result.steps.append(StepChange(step_id, Change.ADDED, queued=queued))
            continue
        previous = old_steps[step_id]
        fields = [] if previous is None else versions.changed_fields(previous, written)
        if fields:
            waiting = run.waiting.get(step_id, 0)
            result.steps.append(StepChange(step_id, Change.CHANGED, tuple(fields), waiting, queued=queued))
    gone = [s for s in old_steps if s not in new_steps] + sorted(set(moved) - set(old_steps))
    for step_id in gone:
        move = moved.get(step_id)
        if move is not None:
            result.steps.append(
                StepChange(step_id, Change.REMOVED, (), move.count, move.to_step, move.reason)
            )
        else:
            target = moves.resolve(step_id, run.outline, journey)
            result.steps.append(StepChange(step_id, Change.REMOVED, (), 0, target.step_id, target.reason))
    if version is None or any(k in versions.ENTERING for k in entry):
        result.entering = run.counts.enrolled
    if any(k in versions.ENDING for k in entry):
        result.converted, result.exited = run.counts.converted, run.counts.exited
    return result


@dataclass
class _Run:
    """What the next tick would do in one journey, read off a rolled-back run of it."""

    counts: tick.JourneyCounts
    moves: list[moves.Move]
    waiting: dict[str, int]  # active enrollments per step before it
    queued: dict[str, int]  # messages it queued per step
    outline: dict[str, Any] | None  # the step outline the database recorded


def _dry_run(db: Database, settings: Settings, journey: Journey, now: datetime) -> _Run:
    with db.engine.connect() as conn:
        transaction = conn.begin()
        try:
            outline = conn.execute(select(journeys.c.steps).where(journeys.c.id == journey.id)).scalar()
            waiting = _waiting(conn, journey.id)
            before = _queued(conn, journey.id)
            counts, moved = tick.JourneyCounts(), list[moves.Move]()
            ctx = tick.context(settings, journey, now)
            tick.evaluate(db, settings, journey, ctx, counts, moved, begin=lambda: nullcontext(conn))
            after = _queued(conn, journey.id)
        finally:
            transaction.rollback()
    queued = {step: n - before.get(step, 0) for step, n in after.items() if n != before.get(step, 0)}
    return _Run(counts, moved, waiting, queued, outline)


def _waiting(conn: Connection, journey_id: str) -> dict[str, int]:
    at = select(en.c.step_id, func.count()).where(
        en.c.journey_id == journey_id, en.c.state == vocab.EnrollmentState.ACTIVE, en.c.step_id.is_not(None)
    )
    return {step: int(n) for step, n in conn.execute(at.group_by(en.c.step_id))}


def _waiting_by_journey(conn: Connection, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    active = select(en.c.journey_id, func.count()).where(
        en.c.journey_id.in_(ids), en.c.state == vocab.EnrollmentState.ACTIVE
    )
    return {j: int(n) for j, n in conn.execute(active.group_by(en.c.journey_id))}


def _queued(conn: Connection, journey_id: str) -> dict[str, int]:
    per_step = select(deliveries.c.step_id, func.count()).where(deliveries.c.journey_id == journey_id)
    return {step: int(n) for step, n in conn.execute(per_step.group_by(deliveries.c.step_id))}


def lines(result: Plan) -> list[str]:
    """The plan as lines for a person: one per journey, then one per change under it."""
    out: list[str] = []
    for j in result.journeys:
        if j.change in (Change.UNCHANGED, Change.DRAFT):
            out.append(
                f"{j.journey_id}: no changes" + (" (draft: never runs)" if j.change == Change.DRAFT else "")
            )
            continue
        head = "new journey" if j.change == Change.NEW else f"version {j.from_version} -> {j.to_version}"
        out.append(f"{j.journey_id}: {head}")
        for s in j.steps:
            out.append("  " + _step_line(s))
        if not j.compared:
            out.append(
                f"  version {j.from_version} ran before versions were kept: its steps are known by id only "
                "and every entry rule is counted as changed"
            )
        elif j.entry:
            out.append(f"  entry rules changed: {', '.join(j.entry)}")
        if j.entering is not None:
            out.append(f"  {j.entering} subject(s) would enter now")
        if j.converted is not None or j.exited is not None:
            out.append(
                f"  the goal and exit now end {j.converted or 0} as converted, {j.exited or 0} as exited"
            )
    for g in result.gone:
        out.append(
            f"{g.journey_id}: no file any more; its {g.active} active enrollment(s) stay where they are"
        )
    if not any(j.change not in (Change.UNCHANGED, Change.DRAFT) for j in result.journeys):
        out.append("no changes")
    return out


def _step_line(s: StepChange) -> str:
    queued = "" if s.queued is None else f"; the next tick queues {s.queued} message(s) at it"
    if s.change == Change.ADDED:
        return f"+ step {s.step_id!r} added{queued}"
    if s.change == Change.CHANGED:
        return f"~ step {s.step_id!r} changed ({', '.join(s.fields)}); {s.waiting} enrollment(s) wait at it{queued}"
    where = f"move to {s.to_step!r}" if s.to_step is not None else "end"
    return f"- step {s.step_id!r} removed: {s.waiting} enrollment(s) {where} ({s.reason})"
