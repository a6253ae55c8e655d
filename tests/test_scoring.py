"""Scores credit each response and product fact once, decay by half-life, and snapshot daily bands."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from backends import url_for
from condition_world import drop_database, open_database
from sqlalchemy import func, insert, select

from engagement import config
from engagement.conditions.context import day_number
from engagement.scores import activity, scoring
from engagement.store import progress, schema
from engagement.store.database import Database

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SETTINGS = config.Settings(
    scoring=config.Scoring(
        half_life_days=10.0,
        milestones=["first_report_created"],
        contact_bands=config.ContactBands(
            green=60.0, yellow=30.0
        ),  # the account bands' numbers, as reckoned below
    )
)


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    handle = open_database(url_for(backend))
    try:
        with handle.begin() as conn:
            conn.execute(insert(schema.accounts), [{"id": "a1", "name": "A"}, {"id": "a2", "name": "B"}])
            conn.execute(
                insert(schema.contacts),
                [
                    {"id": "c1", "account_id": "a1", "email": "c1@example.com"},
                    {"id": "c2", "account_id": "a1", "email": "c2@example.com"},
                    {"id": "c3", "account_id": "a2", "email": "c3@example.com"},
                ],
            )
        yield handle
    finally:
        drop_database(handle)


def respond(db: Database, delivery: str, contact: str | None, kind: str, at: datetime, **extra: Any) -> None:
    row = {
        "delivery_id": delivery, "contact_id": contact, "journey_id": "j", "step_id": "s", "kind": kind,
        "occurred_at": at, "dedupe_key": f"{delivery}:{kind}:{at.isoformat()}", "data": {},
    } | extra  # fmt: skip
    with db.begin() as conn:
        conn.execute(insert(schema.responses), [row])


def event_row(contact: str, name: str, at: datetime, account: str = "a1", **extra: Any) -> dict[str, Any]:
    row = {
        "contact_id": contact, "account_id": account, "name": name, "timestamp": at,
        "properties": {}, "source": "product", "received_at": at,
    }  # fmt: skip
    return row | extra


def event(db: Database, contact: str, name: str, at: datetime, account: str = "a1", **extra: Any) -> None:
    with db.begin() as conn:
        conn.execute(insert(schema.events), [event_row(contact, name, at, account, **extra)])


def score(db: Database, table: Any, owner: str, at: datetime = NOW) -> float:
    key = table.c.contact_id if table is schema.contact_scores else table.c.account_id
    with db.begin() as conn:
        row = conn.execute(select(table.c.value, table.c.as_of_day).where(key == owner)).one_or_none()
    if row is None:
        return 0.0
    return float(row.value * 0.5 ** ((day_number(at) - row.as_of_day) / 10.0))


def test_each_response_counts_once_per_delivery_and_decays_by_half_life(db: Database) -> None:
    ten_days_ago = NOW - timedelta(days=10)
    respond(db, "d1", "c1", "open", ten_days_ago)
    respond(db, "d1", "c1", "open", ten_days_ago + timedelta(hours=1))  # a second open of one email
    respond(db, "d1", "c1", "click", NOW)
    respond(db, "d1", "c1", "delivered", NOW)  # no weight
    respond(db, "d2", "c1", "clicked", NOW)
    assert scoring.credit(db, SETTINGS, NOW) == 3
    assert score(db, schema.contact_scores, "c1") == pytest.approx(1.0 * 0.5 + 3.0 + 3.0)
    assert scoring.credit(db, SETTINGS, NOW) == 0
    assert score(db, schema.contact_scores, "c1", NOW + timedelta(days=20)) == pytest.approx(6.5 / 4)


def test_active_days_count_once_per_contact_and_day_and_milestones_once(db: Database) -> None:
    day = NOW - timedelta(days=1)
    for hours in (0, 1, 5):
        event(db, "c1", "report_viewed", day + timedelta(hours=hours))
    event(db, "c1", "first_report_created", day)
    event(db, "c1", "first_report_created", day + timedelta(hours=2))
    event(db, "c1", "internal", day, source="engine")  # the engine's own notes are not product use
    scoring.credit(db, SETTINGS, NOW)
    expected = (2.0 + 10.0) * 0.5 ** (1 / 10)
    assert score(db, schema.contact_scores, "c1") == pytest.approx(expected)
    event(db, "c1", "report_viewed", day + timedelta(hours=8))  # the same day again
    event(db, "c1", "report_viewed", NOW)  # a new day
    scoring.credit(db, SETTINGS, NOW)
    assert score(db, schema.contact_scores, "c1") == pytest.approx(expected + 2.0)


def test_an_account_scores_the_sum_of_its_contacts_and_its_own_events(db: Database) -> None:
    respond(db, "d1", "c1", "click", NOW)
    respond(db, "d2", "c2", "unsubscribe", NOW)
    respond(db, "d3", "c3", "open", NOW)
    event(db, "someone-unknown", "first_report_created", NOW, account="a2")
    scoring.credit(db, SETTINGS, NOW)
    assert score(db, schema.account_scores, "a1") == pytest.approx(3.0 - 20.0)
    assert score(db, schema.account_scores, "a2") == pytest.approx(1.0 + 2.0 + 10.0)
    assert score(db, schema.contact_scores, "c2") == pytest.approx(-20.0)


def test_a_row_that_commits_after_a_later_key_is_still_credited_once(db: Database) -> None:
    if db.dialect == "sqlite":
        pytest.skip("SQLite has one writer at a time, so keys commit in order")
    slow = db.engine.connect()
    held = slow.begin()
    slow.execute(
        insert(schema.events), [event_row("c2", "slow_import", NOW)]
    )  # draws the lower key, uncommitted
    event(db, "c1", "fast", NOW)  # a higher key, committed at once
    scoring.credit(db, SETTINGS, NOW)
    scoring.credit(db, SETTINGS, NOW + timedelta(minutes=1))  # the slow one is still running
    assert score(db, schema.contact_scores, "c2") == 0.0
    held.commit()
    slow.close()
    scoring.credit(db, SETTINGS, NOW + timedelta(minutes=2))
    assert score(db, schema.contact_scores, "c2", NOW) == pytest.approx(2.0)
    assert score(db, schema.contact_scores, "c1", NOW) == pytest.approx(2.0)
    scoring.credit(db, SETTINGS, NOW + timedelta(minutes=3))
    with db.begin() as conn:
        watermark = conn.execute(select(schema.score_watermarks)).one()
        top = conn.execute(select(func.max(schema.events.c.pk))).scalar_one()
    assert watermark.event_settled == top  # and then it moves on, so old rows are not read again


def test_a_future_timestamp_counts_from_now(db: Database) -> None:
    respond(db, "d1", "c1", "click", NOW + timedelta(days=3))
    scoring.credit(db, SETTINGS, NOW)
    assert score(db, schema.contact_scores, "c1") == pytest.approx(3.0)


def test_concurrent_scorers_count_every_credit_exactly_once(db: Database) -> None:
    if db.dialect == "sqlite" and db.url == "sqlite://":
        pytest.skip("an in-memory SQLite database is private to one connection")
    for i in range(40):
        respond(db, f"d{i}", "c1", "open", NOW)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            scoring.credit(db, SETTINGS, NOW)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert score(db, schema.contact_scores, "c1") == pytest.approx(40.0)


def test_snapshot_records_each_contact_and_account_band_once_a_day(db: Database) -> None:
    for i in range(25):
        respond(db, f"d{i}", "c1", "click", NOW)  # 75: green
    for i in range(12):
        respond(db, f"e{i}", "c2", "click", NOW)  # 36: yellow
    assert scoring.snapshot(db, SETTINGS, NOW) == 5
    assert scoring.snapshot(db, SETTINGS, NOW + timedelta(hours=1)) == 5
    with db.begin() as conn:
        rows = conn.execute(select(schema.score_snapshots)).mappings().all()
    bands = {(r["subject_type"], r["subject_id"]): r["band"] for r in rows}
    assert bands == {
        ("contact", "c1"): "green",
        ("contact", "c2"): "yellow",
        ("contact", "c3"): "red",
        ("account", "a1"): "green",
        ("account", "a2"): "red",
    }
    assert {r["day"] for r in rows} == {NOW.date()}


def test_transaction_ids_compare_across_wraparound() -> None:
    assert progress.precedes(5, 10) and not progress.precedes(10, 5) and not progress.precedes(7, 7)
    assert progress.precedes(2**32 - 3, 4)  # handed out just before the 32-bit counter wrapped


def test_events_that_are_not_usage_earn_no_active_day(db: Database) -> None:
    day = NOW - timedelta(days=1)
    event(db, "c1", "payment_failed", day)
    event(db, "c1", "ticket_opened", day - timedelta(days=1))
    event(db, "c2", "paymentXfailed", day)  # `_` is a letter in a pattern, not LIKE's one-character wildcard
    event(db, "c3", "Payment_failed", day, account="a2")  # patterns are case-sensitive on both engines
    scoring.credit(db, SETTINGS, NOW)
    assert score(db, schema.contact_scores, "c1") == 0.0
    assert score(db, schema.contact_scores, "c2") == pytest.approx(2.0 * 0.5 ** (1 / 10))
    assert score(db, schema.contact_scores, "c3") == pytest.approx(2.0 * 0.5 ** (1 / 10))


def test_not_activity_patterns_read_the_same_in_sql_and_python(db: Database) -> None:
    patterns = ["payment_*", "x?z", "100%*"]
    names = ["payment_failed", "paymentXfailed", "payment_", "xyz", "xz", "xyyz", "100%off", "100off", "Xyz"]
    e = schema.events
    with db.begin() as conn:
        conn.execute(insert(e), [event_row("c1", name, NOW) for name in names])
        found = set(conn.execute(select(e.c.name).where(activity.is_activity(e.c.name, patterns))).scalars())
    assert found == {n for n in names if activity.counts_as_activity(n, patterns)}
    assert found == {"paymentXfailed", "xz", "xyyz", "100off", "Xyz"}


def test_a_not_activity_pattern_with_a_character_class_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[ab\]"):
        config.Events(not_activity=["[ab]*"])
