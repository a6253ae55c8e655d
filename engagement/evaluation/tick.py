"""One evaluation pass at one instant: credit scores, end, enroll, advance, then dispatch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from engagement.conditions.context import EvalContext
from engagement.config import Settings
from engagement.delivery import dispatch
from engagement.delivery.templates import Renderer
from engagement.evaluation import advance, enroll, incremental, moves
from engagement.journeys import versions
from engagement.journeys.catalog import Catalog, Journey
from engagement.scores import scoring
from engagement.store import schema
from engagement.store.database import Database

STATISTICS_AFTER = 10_000  # rows a tick inserts beyond which it refreshes the planner's statistics
GROWN = ("enrollment", "delivery", "subject_change")  # the tables a big tick grows
log = logging.getLogger(__name__)


@dataclass
class JourneyCounts:
    """What a tick did in one journey."""

    enrolled: int = 0
    converted: int = 0
    exited: int = 0
    completed: int = 0
    stepped: int = 0
    queued: int = 0


@dataclass
class TickReport:
    """What a tick did, per journey and for delivery."""

    now: datetime
    journeys: dict[str, JourneyCounts] = field(default_factory=dict)
    dispatched: dispatch.Dispatched = field(default_factory=dispatch.Dispatched)
    seconds: float = 0.0
    moves: list[moves.Move] = field(default_factory=list)  # enrollments a changed journey file moved
    failures: dict[str, str] = field(default_factory=dict)  # journey id -> why its evaluation failed

    def total(self, name: str) -> int:
        """Sum one counter over all journeys."""
        return sum(getattr(c, name) for c in self.journeys.values())


def describe(exc: BaseException) -> str:
    """An exception in one line: the database's own message for a database error, not the whole SQL."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(cause).__name__}: {cause}".splitlines()[0]


Begin = Callable[[], AbstractContextManager[Connection]]


def evaluate(
    db: Database,
    settings: Settings,
    journey: Journey,
    ctx: EvalContext,
    counts: JourneyCounts,
    moved: list[moves.Move],
    stopping: Callable[[], bool] = dispatch.never,
    begin: Begin | None = None,
) -> None:
    """One journey's share of a tick; each transaction's counts (and `moved`) are added once it has committed.

    `begin` opens each transaction (default `db.begin`); `engagement plan` passes one that runs them all
    in a single transaction it then rolls back (dryrun/plan.py), so it counts what this would write.
    """
    begin = begin or db.begin
    active = journey.status == "active"  # paused: nobody enters, nobody moves; goal and exit still end
    # SQLite has one writer at a time (and one worker per file): the first advance batch runs in the same
    # transaction, a commit fewer per journey and tick. PostgreSQL advances outside the enrolling lock.
    first = active and db.dialect == "sqlite"
    batch: advance.Advanced | None = None
    with begin() as conn:  # moves and the evaluation in one transaction: a commit fewer per journey and tick
        db.advisory_lock(conn, f"engagement.evaluation.enroll:{journey.id}")
        begun = incremental.start(conn, journey)  # mark, watermark, outline and top enrollment id: one read
        done = moves.apply(db, conn, journey, ctx.now, begun.recorded)
        covered = incremental.plan(db, conn, journey, ctx, begun)
        converted, exited = advance.end_on_goal_and_exit(conn, journey, ctx, covered.subjects)
        entered = enroll.Entered()
        if active:
            entered = enroll.enroll(db, conn, journey, ctx, covered.subjects, begun.top)
            advance.wake_waiters(conn, journey, ctx)
        incremental.record(db, conn, journey, ctx, covered)
        if first and not stopping():
            batch = advance.advance_batch(db, conn, journey, ctx, settings.limits.batch_size)
    moved += done
    counts.converted, counts.exited = converted, exited
    counts.enrolled, counts.stepped, counts.queued = entered.enrolled, entered.stepped, entered.queued
    counts.completed = entered.completed
    if not active:
        return
    if first:
        if batch is None:
            return  # nothing was due (or the tick is stopping)
        _add(counts, batch)
    while not stopping():  # batches outside the lock: several workers advance one journey at once
        with begin() as conn:
            batch = advance.advance_batch(db, conn, journey, ctx, settings.limits.batch_size)
        if batch is None:
            break
        _add(counts, batch)


def _add(counts: JourneyCounts, batch: advance.Advanced) -> None:
    counts.stepped += batch.stepped
    counts.queued += batch.queued
    counts.completed += batch.completed


def context(settings: Settings, journey: Journey, now: datetime) -> EvalContext:
    """The evaluation context of a journey at `now`."""
    return scoring.context(settings, now, journey.audience)


def sync_journeys(db: Database, catalog: Catalog, now: datetime) -> None:
    """Record each journey's status and version as the engine last saw it, and keep each version it runs."""
    rows = [
        {
            "id": j.id,
            "name": j.spec.name,
            "status": j.status,
            "version": j.version,
            "source": str(j.source),
            "updated_at": now,
        }
        for j in catalog.journeys.values()
    ]
    kept = [
        {
            "journey_id": j.id,
            "version": j.version,
            "content": j.content,
            "shape": versions.shape(j),
            "first_run_at": now,
        }
        for j in catalog.journeys.values()
        if j.status != "draft"  # a draft never runs
    ]
    if rows:
        with db.begin() as conn:
            db.upsert(
                conn, schema.journeys, rows, ["id"], ["name", "status", "version", "source", "updated_at"]
            )
            db.upsert(conn, schema.journey_versions, kept, ["journey_id", "version"])


def run(
    db: Database,
    settings: Settings,
    catalog: Catalog,
    renderer: Renderer,
    ports: dispatch.Ports,
    now: datetime,
    *,
    stopping: Callable[[], bool] = dispatch.never,
    clock: Callable[[], datetime] | None = None,
    send: bool = True,
) -> TickReport:
    """Run one tick at `now`. Running it twice at the same instant changes nothing more.

    Once `stopping()` is true, no further batch is advanced or sent; the rest waits for the next tick.
    With `send=False` the tick evaluates and queues but sends nothing (benchmarks of the evaluation).
    `clock` tells the time as the tick goes on, for delivery leases (default: `now` throughout).
    A journey whose evaluation raises (a database error on a bad stored value, say) has its transaction
    rolled back and is reported in `failures`; the other journeys and the dispatch still run.
    Several workers may tick at once: each journey's ending and enrolling runs under a database lock
    named after it, enrollments and deliveries are claimed with SKIP LOCKED, and the unique keys stay
    the last line of defence.
    """
    started = time.perf_counter()
    report = TickReport(now)
    sync_journeys(db, catalog, now)
    scoring.credit(db, settings, now)  # score conditions see every response and event so far
    for journey in catalog.journeys.values():
        if journey.status == "draft" or stopping():
            continue
        counts = report.journeys.setdefault(journey.id, JourneyCounts())
        try:
            ctx = context(settings, journey, now)
            evaluate(db, settings, journey, ctx, counts, report.moves, stopping)
        except Exception as exc:  # one journey that cannot be evaluated must not stop the others
            log.exception("journey %s failed at the tick of %s", journey.id, now.isoformat())
            report.failures[journey.id] = describe(exc)
    if report.total("enrolled") + report.total("queued") >= STATISTICS_AFTER:
        db.refresh_statistics(GROWN)
    incremental.prune(db, catalog)
    if send:
        report.dispatched = dispatch.dispatch(
            db, settings, catalog, renderer, ports, now, stopping=stopping, clock=clock
        )
    report.seconds = time.perf_counter() - started
    return report
