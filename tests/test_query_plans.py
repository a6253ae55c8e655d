"""The due-work queries are served by indexes on both engines: a tick never reads the whole backlog.

Each engine gets 20,000 enrollments in five journeys and 20,000 deliveries, about 1% of each due, and
20,000 contacts, 0.1% of them erased, with statistics gathered, and is asked for its plan of the two
queries every tick runs in a loop: the next due enrollments of one journey (`advance.due`) and the next
due deliveries (`dispatch.due`); of two lookups whose indexes are partial: deliveries by the
provider's message id (SendGrid events) and the erased ones among an incoming batch's contacts; and of
every statement steered by a hint of `engagement/store/planner.py`: a day range on contacts' creation time,
which must walk the table, not the created_at index; the report of unsent deliveries, which must read them
through the claim index; the report's distinct responses, which must walk ix_response_report.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import migrated, url_for
from sqlalchemy import Connection, event, insert, select, text

from engagement.conditions import sql
from engagement.conditions.context import EvalContext
from engagement.conditions.parse import parse
from engagement.delivery import dispatch
from engagement.evaluation import advance
from engagement.ingest import upserts as ingest
from engagement.reports import queries
from engagement.reports.period import Period
from engagement.responses import email_events
from engagement.store import schema
from engagement.store.database import Database

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ROWS = 20_000
JOURNEYS = [f"journey-{i}" for i in range(5)]


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[Database]:
    with migrated(url_for(backend, tmp_path)) as handle:
        _fill(handle)
        yield handle


def _fill(db: Database) -> None:
    def when(i: int) -> datetime:  # one in a hundred is due
        return NOW - timedelta(minutes=1) if i % 100 == 0 else NOW + timedelta(days=1 + i % 30)

    enrollments = [
        {"journey_id": JOURNEYS[i % 5], "audience": "contact", "subject_id": f"c{i}", "state": "active",
         "step_id": "welcome", "next_action_at": when(i), "entered_at": NOW - timedelta(days=3)}
        for i in range(ROWS)
    ]  # fmt: skip
    deliveries = [
        {"id": f"d{i:06d}", "enrollment_id": i + 1, "journey_id": JOURNEYS[i % 5], "step_id": "welcome",
         "channel": "email", "recipient": f"c{i}", "contact_id": f"c{i}",
         "status": "queued" if i % 100 == 0 else "sent", "due_at": when(i), "created_at": NOW,
         "provider_message_id": None if i % 100 == 0 else f"msg{i}"}
        for i in range(ROWS)
    ]  # fmt: skip
    contacts = [
        {"id": f"c{i}", "account_id": "a", "email": f"c{i}@example.com",
         "erased_at": NOW if i % 1000 == 0 else None,
         "created_at": NOW - timedelta(days=1 if i % 100 == 0 else 400)}
        for i in range(ROWS)
    ]  # fmt: skip
    responses = [
        {"delivery_id": f"d{i:06d}", "contact_id": f"c{i}", "journey_id": JOURNEYS[i % 5], "step_id": "welcome",
         "kind": ("open", "click", "delivered")[i % 3], "occurred_at": NOW - timedelta(days=i % 30, hours=1),
         "dedupe_key": f"r{i}", "data": {}}
        for i in range(ROWS)
    ]  # fmt: skip
    with db.begin() as conn:
        conn.execute(insert(schema.responses), responses)
        conn.execute(insert(schema.enrollments), enrollments)
        conn.execute(insert(schema.deliveries), deliveries)
        conn.execute(insert(schema.accounts), [{"id": "a", "name": "A"}])
        conn.execute(insert(schema.contacts), contacts)
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def plan(conn: Connection, statement: Any) -> str:
    """The engine's plan for `statement`, as one string (EXPLAIN QUERY PLAN / EXPLAIN)."""
    prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "

    def explain(*args: Any) -> tuple[str, Any]:
        return prefix + args[2], args[3]

    event.listen(conn, "before_cursor_execute", explain, retval=True)
    try:
        rows = conn.execute(statement).cursor.fetchall()
    finally:
        event.remove(conn, "before_cursor_execute", explain)
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def test_the_due_enrollments_query_uses_the_per_journey_due_index(db: Database) -> None:
    with db.begin() as conn:
        found = plan(conn, advance.due("journey-3", NOW, 2000))
    assert "ix_enrollment_due" in found, found
    assert "SCAN enrollment" not in found and "Seq Scan on enrollment" not in found, found
    assert "TEMP B-TREE" not in found, found  # SQLite takes the order from the index, sorting nothing


def test_the_due_deliveries_query_uses_the_claim_index(db: Database) -> None:
    with db.begin() as conn:
        found = plan(conn, dispatch.due(JOURNEYS, NOW, 100))
    assert "ix_delivery_claim" in found, found
    assert "SCAN delivery" not in found and "Seq Scan on delivery" not in found, found


def test_the_provider_message_id_lookup_uses_its_partial_index(db: Database) -> None:
    with db.begin() as conn:
        found = plan(conn, email_events.by_message_id(conn, ["msg101", "msg202", "msg999999"]))
        rows = conn.execute(email_events.by_message_id(conn, ["msg101", "msg202", "msg999999"])).all()
    assert "ix_delivery_provider_message_id" in found, found
    assert "SCAN delivery" not in found and "Seq Scan on delivery" not in found, found
    assert sorted(r.id for r in rows) == ["d000101", "d000202"]


def test_the_erased_contacts_lookup_uses_its_partial_index(db: Database) -> None:
    wanted = ["c1000", "c1001", "c2000", "c999999"]
    with db.begin() as conn:
        found = plan(conn, ingest.existing_query(conn, schema.contacts.c.id, wanted, ingest.ERASED))
        erased = ingest.existing(conn, schema.contacts.c.id, wanted, ingest.ERASED)
    # by index (the partial one once statistics show it small; SQLite without them looks the ids up by key)
    assert "ix_contact_erased" in found, found
    assert "SCAN contact" not in found and "Seq Scan on contact" not in found, found
    assert erased == {"c1000", "c2000"}


def test_day_ranges_are_not_answered_from_the_created_at_index(db: Database) -> None:
    """Even a range that picks 1% of contacts walks the table: a full pass's day range picks most of them,
    and walking ix_contact_created_at would visit them in a random order of ids (conditions/sql.py)."""
    recent = parse({"days_since": {"field": "contact.created_at", "lt": 7}})
    query = select(schema.contacts.c.id).where(sql.compile_condition(recent, EvalContext(NOW, "contact")))
    with db.begin() as conn:
        found = plan(conn, query)
        ids = set(conn.execute(query).scalars())
    assert "ix_contact_created_at" not in found, found
    assert ids == {f"c{i}" for i in range(0, ROWS, 100)}


PERIOD = Period(NOW - timedelta(days=30), NOW + timedelta(days=1))


def test_the_unsent_deliveries_report_is_not_read_in_step_order(db: Database) -> None:
    """planner.UnindexedOnSqlite: for its GROUP BY's order SQLite would walk ix_delivery_report_sent over
    every delivery, a row lookup each; PostgreSQL finds the unsent ones by status on its own."""
    with db.begin() as conn:
        found = plan(conn, queries.unsent_query(conn.dialect.name, PERIOD, None))
        rows = conn.execute(queries.unsent_query(conn.dialect.name, PERIOD, None)).all()
    assert "ix_delivery_report_sent" not in found, found
    if db.dialect == "postgresql":
        assert "ix_delivery_claim" in found and "Seq Scan on delivery" not in found, found
    assert [(row.journey_id, row.day) for row in rows] == [("journey-0", "2026-03-02")]  # the queued ones


def test_the_distinct_responses_report_walks_the_report_index(db: Database) -> None:
    """planner.indexed_by: SQLite would take ix_response_report_day and sort every entry for the DISTINCT."""
    with db.begin() as conn:
        stmt, params = queries.distinct_totals_query(conn.dialect.name, PERIOD, None)
        found = plan(conn, stmt.params(params) if params else stmt)
        totals = conn.execute(stmt, params).all()
    if db.dialect == "sqlite":
        assert "USING COVERING INDEX ix_response_report\n" in found + "\n", found
        assert "ix_response_report_day" not in found and "TEMP B-TREE" not in found, found
    assert sum(row.n for row in totals) == ROWS
