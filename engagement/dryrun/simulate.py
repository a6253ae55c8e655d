"""Dry runs: the real engine on a copy of the data, a moving clock and recording providers."""

from __future__ import annotations

import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from engagement.clock import ManualClock
from engagement.config import Settings
from engagement.delivery.recording import CountingEmail, RecordingWebhook
from engagement.engine import Engine
from engagement.journeys.catalog import Catalog
from engagement.store import schema
from engagement.store.database import Database


@dataclass(frozen=True)
class Planned:
    """One message the simulation would have sent."""

    at: datetime
    journey_id: str
    step_id: str
    channel: str
    contact_id: str | None
    email: str | None
    subject: str | None
    status: str
    variant: str | None = None  # the step's variant it carries


@dataclass
class Simulation:
    """The timeline of a dry run and its per-day counts."""

    start: datetime
    end: datetime
    timeline: list[Planned] = field(default_factory=list)
    enrolled: Counter[str] = field(default_factory=Counter)

    def per_day(self) -> dict[date, Counter[str]]:
        """Messages per day, keyed `journey/step`."""
        days: dict[date, Counter[str]] = {}
        for item in self.timeline:
            days.setdefault(item.at.date(), Counter())[f"{item.journey_id}/{item.step_id}"] += 1
        return days


def restrict(catalog: Catalog, journey_id: str | None) -> Catalog:
    """Only the named journey (a draft is simulated as if it were active)."""
    if journey_id is None:
        return catalog
    journey = catalog.get(journey_id)
    if journey.status != "active":
        journey = type(journey)(
            **{**journey.__dict__, "spec": journey.spec.model_copy(update={"status": "active"})}
        )
    return Catalog({journey.id: journey}, [])


@contextmanager
def copy_of(db: Database) -> Iterator[Database]:
    """A throwaway SQLite copy of the database (SQLite: the backup API; others: table by table)."""
    with tempfile.TemporaryDirectory(prefix="engagement-simulate-") as folder:
        target = Path(folder) / "copy.db"
        if db.dialect == "sqlite":
            raw = db.engine.raw_connection()
            try:
                source = raw.driver_connection
                assert isinstance(source, sqlite3.Connection)
                with sqlite3.connect(target) as dest:
                    source.backup(dest)
            finally:
                raw.close()
            copy = Database(f"sqlite:///{target}")
        else:
            copy = Database(f"sqlite:///{target}")
            copy.create_all()
            _copy_tables(db, copy)
        try:
            yield copy
        finally:
            copy.dispose()


# The change log and the marks read against it are ordered by PostgreSQL's transaction ids, which mean
# nothing on the SQLite copy (whose own triggers fill its log as the rows arrive): without them, the
# copy's first tick evaluates everyone, as the first tick of any journey does.
NOT_COPIED = frozenset({schema.subject_changes.name, schema.journey_watermarks.name})


def _copy_tables(source: Database, target: Database) -> None:
    with source.engine.connect() as reader, target.begin() as writer:
        for table in schema.metadata.sorted_tables:
            if table.name in NOT_COPIED:
                continue
            result = reader.execution_options(yield_per=5000).execute(select(table))
            for chunk in result.mappings().partitions():
                writer.execute(table.insert(), [dict(row) for row in chunk])


def run(
    settings: Settings,
    db: Database,
    catalog: Catalog,
    *,
    start: datetime,
    days: int,
    step: timedelta = timedelta(hours=1),
    progress: Callable[[datetime], None] | None = None,
) -> Simulation:
    """Tick the real engine over `days` on a copy of `db`; nothing is sent, nothing kept."""
    db.check_ready()
    result = Simulation(start, start + timedelta(days=days))
    with copy_of(db) as copy:
        clock = ManualClock(start)
        engine = Engine(
            settings,
            clock=clock,
            database=copy,
            catalog=catalog,
            email=CountingEmail(),
            webhooks=RecordingWebhook(),
        )
        now = start
        while now <= result.end:
            report = engine.tick(now)
            for journey_id, counts in report.journeys.items():
                result.enrolled[journey_id] += counts.enrolled
            if progress:
                progress(now)
            now = clock.advance(step)
        d, c = schema.deliveries, schema.contacts
        with copy.engine.connect() as conn:
            rows = conn.execute(
                select(
                    d.c.created_at,
                    d.c.journey_id,
                    d.c.step_id,
                    d.c.channel,
                    d.c.contact_id,
                    c.c.email,
                    d.c.subject,
                    d.c.status,
                    d.c.variant,
                )
                .select_from(d.outerjoin(c, c.c.id == d.c.contact_id))
                .where(d.c.created_at >= start)
                .order_by(d.c.created_at, d.c.journey_id, d.c.step_id, d.c.contact_id)
            )
            result.timeline = [Planned(*row) for row in rows]
    return result
