"""Every bulk statement the engine runs writes the same rows on SQLite's fast path as on SQLAlchemy's own.

`Database._driver_executemany` (store/database.py) compiles a statement once and hands the driver tuples
built a column at a time. Here each call it gets first runs SQLAlchemy's plain executemany inside a
savepoint, notes the table's rows (and the change log its triggers fill) and rolls back; then the fast
path runs and must leave exactly those rows and report the same count. The scenario below drives every
call site of `upsert`, `insert_ignore` and `executemany` in the package (found by reading its source),
so a new bulk statement fails this test until the scenario runs it too. (A statement that needs
Python-side column defaults, such as a new account's `created_at`, is not taken by the fast path at all.)
"""

from __future__ import annotations

import ast
import shutil
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_world import NOW, REPO, World, one_email
from sqlalchemy import Connection, Table, select

from engagement.clock import ManualClock
from engagement.delivery import pause, sendgrid_events, suppression, unsubscribe
from engagement.dryrun.demo import revenue as demo_revenue
from engagement.dryrun.demo import surveys as demo_surveys
from engagement.dryrun.demo.responses import Customers
from engagement.health import cards as health_cards
from engagement.health import compute as health_compute
from engagement.ingest import importer, intake, segment, stripe_events, subscriptions
from engagement.reports import digest
from engagement.responses import email_events, inbox
from engagement.responses import surveys as survey_answers
from engagement.scores import scoring
from engagement.store import database, schema
from engagement.store.database import Database

PACKAGE = Path(database.__file__).resolve().parents[1]
BULK = frozenset({"upsert", "insert_ignore", "executemany"})  # the Database methods that take the fast path
FAST_PATH = Database._driver_executemany

JOURNEYS = (
    one_email(),
    """
    id: nudges
    name: Nudges
    status: active
    trigger: {event: signed_up}
    steps:
      - id: connect
        in_app: {title: Connect your data, body: Reports need a data source., expires: 7d}
    """,
)


def call_sites() -> set[tuple[str, str]]:
    """(module, function) of every call of a bulk method on a database handle outside store/database.py."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path == Path(database.__file__).resolve():
            continue
        module = str(path.relative_to(PACKAGE.parent))
        for function in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                called = node.func if isinstance(node, ast.Call) else None
                if (
                    isinstance(called, ast.Attribute)
                    and called.attr in BULK
                    and "db" in ast.unparse(called.value)
                ):
                    found.add((module, function.name))
    return found


def caller() -> tuple[str, str]:
    """(module, function) of the package code that called into the database's bulk methods."""
    frame = sys._getframe(2)
    while frame.f_code.co_filename in (database.__file__, __file__):
        frame = frame.f_back  # type: ignore[assignment]
    return str(Path(frame.f_code.co_filename).resolve().relative_to(PACKAGE.parent)), frame.f_code.co_name


def contents(conn: Connection, tables: Sequence[Table]) -> list[list[Any]]:
    """Every row of the tables as SQLite stores it (the text of a timestamp, not the value read back)."""
    found = []
    for t in tables:
        order = ", ".join(c.name for c in t.primary_key.columns)
        found.append(list(conn.exec_driver_sql(f"SELECT * FROM {t.name} ORDER BY {order}")))
    return found


class BothWays:
    """The fast path, checked against the plain path on the same rows; remembers who called it, and
    whose statements it ran (not those that need Python-side column defaults: they take the plain path)."""

    def __init__(self) -> None:
        self.called: set[tuple[str, str]] = set()
        self.fast: set[tuple[str, str]] = set()

    def check(self, db: Database, conn: Connection, stmt: Any, rows: Sequence[dict[str, Any]]) -> int | None:
        site = caller()
        self.called.add(site)
        watched = [stmt.table, schema.subject_changes]
        with conn.begin_nested() as savepoint:
            plain = sum(conn.execute(stmt, list(chunk)).rowcount for chunk in database._chunks(rows))
            wanted = contents(conn, watched)
            savepoint.rollback()
        changed = FAST_PATH(db, conn, stmt, rows)
        if changed is not None:
            assert contents(conn, watched) == wanted, f"{site}: the fast path wrote other rows"
            assert changed == plain, f"{site}: the fast path counted {changed} rows, SQLAlchemy {plain}"
            self.fast.add(site)
        return changed


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> BothWays:
    both = BothWays()
    monkeypatch.setattr(
        Database, "_driver_executemany", lambda db, conn, stmt, rows: both.check(db, conn, stmt, rows)
    )
    return both


def sendgrid(event: str, delivery: Any, **fields: Any) -> email_events.EmailEvent:
    at = int((NOW + timedelta(minutes=5)).timestamp())
    raw = sendgrid_events.SendgridEvent(
        event=event, timestamp=at, email=delivery.recipient, delivery_id=delivery.id, **fields
    )
    interpreted = sendgrid_events.interpret(raw)
    assert interpreted is not None
    return interpreted


def test_every_bulk_statement_writes_the_same_rows_both_ways(checked: BothWays, tmp_path: Path) -> None:
    world = World(tmp_path)
    world.configure('[reports]\ndigest_recipients = ["csm@chartwell.example"]\n')
    for text in JOURNEYS:
        world.journey(text)
    db, settings = world.db, world.settings
    people = world.people(4)
    world.events(*({"id": f"e-{p}", "contact_id": p, "name": "signed_up", "timestamp": NOW} for p in people))
    world.tick(NOW)
    scoring.credit(db, settings, NOW + timedelta(minutes=1))
    d = schema.deliveries
    with db.begin() as conn:
        emails = conn.execute(select(d).where(d.c.channel == "email").order_by(d.c.id)).all()
        nudge = conn.execute(select(schema.nudges).order_by(schema.nudges.c.id)).first()
    assert len(emails) == 4 and nudge is not None
    later = NOW + timedelta(minutes=10)
    with db.begin() as conn:
        events = [
            sendgrid("delivered", emails[0]),
            sendgrid("open", emails[0]),
            sendgrid("bounce", emails[1]),
        ]
        email_events.record(db, conn, events, later)
        unsubscribe.record(db, conn, emails[2].contact_id, emails[2].id, later)
        suppression.add(db, conn, "someone@example.com", "unsubscribe", "test", later)
        suppression.remove(db, conn, "someone@example.com", later + timedelta(minutes=1))
        pause.hold(db, conn, "sendgrid", later + timedelta(minutes=5), later)
        found = inbox.find(conn, nudge.id)
        assert found is not None
        inbox.record(db, conn, found.row, "clicked", later)
        stranger = {"userId": "stranger", "timestamp": later}  # no account yet: the placeholder takes them
        calls: list[tuple[list[str | int], segment.Call]] = [
            ([0], segment.Identify(**stranger, messageId="m1", traits={"email": "s@example.com"})),
            ([1], segment.Track(**stranger, messageId="m2", event="viewed_report")),
            ([2], segment.Group(groupId="acme", messageId="m3", timestamp=later, traits={"mrr": 120})),
        ]
        intake.write(db, conn, calls, settings, later)  # acme's new MRR is a revenue row
        change = stripe_events.Change("evt_1", stripe_events.CREATED, NOW, "sub_1", "acme", "active", 150.0)
        assert subscriptions.take(db, conn, change, later, settings.touch) == subscriptions.APPLIED
    revenue_file = tmp_path / "revenue.csv"
    revenue_file.write_text("account_id,effective_at,mrr\nacme,2026-01-01T00:00:00Z,80\n")
    importer.import_file(db, settings, "revenue", revenue_file, later)
    with db.begin() as conn:  # the demo's simulated people open what was sent at NOW
        conn.execute(d.update().where(d.c.status == "sent").values(sent_at=NOW))
        sent = list(conn.execute(select(d.c.id).where(d.c.status == "sent").order_by(d.c.id)).scalars())
    Customers(db, seed=7).respond(NOW, sent)
    assert digest.send_digest(settings, db, ManualClock(later), force=True) == 1
    scoring.credit(db, settings, later + timedelta(minutes=1))
    account = {"id": "acme", "plan": "pro", "mrr": 99.0, "signed_up_at": NOW - timedelta(days=400)}
    assert demo_revenue.record(
        db, [{**account, "renewal_date": (NOW + timedelta(days=20)).date()}], NOW - timedelta(days=365), NOW
    )
    with db.begin() as conn:  # the demo's simulated people answer a survey they were sent
        sent = conn.execute(select(d.c.journey_id, d.c.step_id).where(d.c.status == "sent")).all()
    steps = {journey: [(step, "nps")] for journey, step in sent}
    assert steps and demo_surveys.answer(db, steps, seed=7, end=NOW + timedelta(days=30)) > 0
    with db.begin() as conn:  # a contact answers a survey on its landing page (the first answer, then again)
        asked = conn.execute(select(d).where(d.c.status == "sent", d.c.contact_id.is_not(None))).first()
        assert asked is not None
        survey = survey_answers.Survey(
            asked.id, asked.contact_id, "acme", asked.journey_id, asked.step_id, "nps"
        )
        conn.execute(schema.survey_answers.delete().where(schema.survey_answers.c.delivery_id == asked.id))
        assert survey_answers.record(db, conn, survey, survey_answers.Answer(3, "slow"), later, "email")
    (world.root / "scorecards").mkdir()  # the health refresh takes its lock row in score_watermark
    shutil.copy(REPO / "scorecards" / "tech-touch.yaml", world.root / "scorecards")
    assert health_compute.refresh(db, settings, health_cards.load(settings), later).accounts > 0

    missing = call_sites() - checked.called
    assert not missing, f"bulk statements this scenario never ran: {sorted(missing)}"
    assert len(checked.fast) >= 15, sorted(checked.called - checked.fast)
