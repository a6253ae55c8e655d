"""The Alembic revisions build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from backends import drop_everything, url_for
from engine_world import World
from sqlalchemy import Engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from engagement import engine as engines
from engagement import errors
from engagement.clock import ManualClock
from engagement.delivery.recording import RecordingEmail, RecordingWebhook
from engagement.store import database, migrate, schema

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[database.Database]:
    """An empty database on each backend, left empty again afterwards."""
    handle = database.Database(url_for(backend, tmp_path))
    drop_everything(handle.engine)  # a run that crashed half-way may have left tables behind
    try:
        yield handle
    finally:
        drop_everything(handle.engine)
        handle.dispose()


def _differences(db: database.Database) -> list[Any]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, schema.metadata))


def _snapshot(engine: Engine) -> dict[str, dict[str, Any]]:
    """Everything reflection can see of each table, in a comparable form."""
    found = inspect(engine)
    tables: dict[str, dict[str, Any]] = {}
    for name in sorted(found.get_table_names()):
        if name == "alembic_version":
            continue
        tables[name] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], str(c.get("default")))
                for c in found.get_columns(name)
            ],
            "pk": _plain(found.get_pk_constraint(name)),
            "fks": sorted(_plain(fk) for fk in found.get_foreign_keys(name)),
            "indexes": sorted(_plain(ix) for ix in found.get_indexes(name)),
            "uniques": sorted(_plain(uq) for uq in found.get_unique_constraints(name)),
            "checks": sorted(_plain(ck) for ck in found.get_check_constraints(name)),
            "triggers": _triggers(engine, name),
        }
    return tables


def _triggers(engine: Engine, table: str) -> list[Any]:
    """The triggers on one table (SQLite drops them when a migration rebuilds the table)."""
    query = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :table"
        if engine.dialect.name == "sqlite"
        else "SELECT trigger_name, event_manipulation, action_condition, action_statement"
        " FROM information_schema.triggers WHERE event_object_table = :table"
    )
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(text(query), {"table": table}))


def _plain(reflected: Any) -> str:
    # str() turns reflected SQL fragments (SQLite's sqlite_where is a TextClause) into their text
    return json.dumps(reflected, sort_keys=True, default=str)


def _enrollment(subject: str, state: str) -> dict[str, Any]:
    return {
        "journey_id": "onboarding",
        "audience": "contact",
        "subject_id": subject,
        "holdout": False,
        "state": state,
        "entered_at": NOW,
    }


def test_upgrading_an_empty_database_to_head_matches_the_models(db: database.Database) -> None:
    migrate.upgrade(db)
    assert _differences(db) == []


def test_the_migrated_schema_is_identical_to_create_all(db: database.Database) -> None:
    # compare_metadata skips what alembic cannot diff (partial index WHERE clauses, sequences),
    # so reflect both schemas in full and compare them field by field as well.
    db.create_all()
    expected = _snapshot(db.engine)
    drop_everything(db.engine)
    migrate.upgrade(db)
    assert _snapshot(db.engine) == expected
    assert set(expected) == set(schema.metadata.tables)


def test_the_partial_indexes_keep_their_where_clause(db: database.Database) -> None:
    migrate.upgrade(db)
    indexes = {ix["name"]: ix for ix in inspect(db.engine).get_indexes("enrollment")}
    for name in ("uq_enrollment_active_subject", "ix_enrollment_due"):
        assert "active" in str(indexes[name]["dialect_options"][f"{db.dialect}_where"])
    with db.begin() as conn:
        conn.execute(insert(schema.enrollments), [_enrollment("c1", "ended"), _enrollment("c1", "active")])
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(insert(schema.enrollments), [_enrollment("c1", "active")])


def test_autoincrement_ids_are_assigned_by_the_database(db: database.Database) -> None:
    migrate.upgrade(db)
    row = {"contact_id": "c1", "name": "login", "timestamp": NOW, "properties": {}, "received_at": NOW}
    with db.begin() as conn:
        first = conn.execute(insert(schema.events).returning(schema.events.c.pk), [row]).scalar_one()
        second = conn.execute(
            insert(schema.events).returning(schema.events.c.pk), [{**row, "name": "logout"}]
        ).scalar_one()
    assert second > first


def test_upgrade_is_idempotent_and_is_current_says_so(db: database.Database) -> None:
    assert migrate.current(db) is None
    assert not migrate.is_current(db)
    migrate.upgrade(db)
    assert migrate.current(db) == migrate.head()
    assert migrate.is_current(db)
    with db.begin() as conn:
        conn.execute(insert(schema.enrollments), [_enrollment("c1", "active")])
    migrate.upgrade(db)
    assert migrate.is_current(db)
    with db.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM enrollment")).scalar_one() == 1


def test_downgrading_to_base_then_upgrading_again_rebuilds_the_schema(db: database.Database) -> None:
    migrate.upgrade(db)
    migrate.downgrade(db, "base")
    assert migrate.current(db) is None
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    with pytest.raises(database.DatabaseNotReady):
        db.check_ready()
    migrate.upgrade(db)
    db.check_ready()
    assert migrate.is_current(db)
    assert _differences(db) == []


def test_the_environment_falls_back_to_the_sqlalchemy_url_option(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'engagement.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")
    handle = database.Database(url)
    try:
        assert migrate.is_current(handle)
    finally:
        handle.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "postgresql://engagement@localhost/engagement"])
def test_offline_mode_renders_the_partial_unique_index(url: str) -> None:
    out = io.StringIO()
    cfg = Config(stdout=out)
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    with contextlib.redirect_stdout(out):
        command.upgrade(cfg, "head", sql=True)
    assert (
        "CREATE UNIQUE INDEX uq_enrollment_active_subject ON enrollment (journey_id, subject_id) "
        "WHERE state = 'active'" in out.getvalue()
    )


def test_a_missing_migrations_folder_is_reported_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "MIGRATIONS", tmp_path / "migrations")
    with pytest.raises(errors.EngagementError, match="migrations folder not found"):
        migrate.head()


def test_an_enrollment_stored_at_a_positional_step_id_before_0010_goes_on_after_the_upgrade(
    db: database.Database, tmp_path: Path
) -> None:
    (tmp_path / "files").mkdir()
    world = World(tmp_path / "files")  # config, journey file and templates; the database is `db`
    world.journey("""
        id: drip
        name: Drip
        status: active
        trigger: {event: signed_up}
        steps:
          - id: welcome
            email: {template: onboarding/welcome, subject: Welcome}
          - wait: 2d
          - id: tips
            email: {template: adoption/first-report-tips, subject: Tips}
    """)
    migrate.upgrade(db, "0009")
    with db.begin() as conn:  # what the previous version left: welcome sent, waiting at `wait@1`
        conn.execute(insert(schema.accounts), [{"id": "acme", "name": "Acme", "traits": {}}])
        conn.execute(
            insert(schema.contacts),
            [{"id": "c1", "account_id": "acme", "email": "c1@example.com", "traits": {}}],
        )
        conn.execute(insert(schema.journeys), [{"id": "drip", "name": "Drip", "status": "active"}])
        waiting = {"step_id": "wait@1", "wait_started_at": NOW, "next_action_at": NOW + timedelta(days=2)}
        conn.execute(
            insert(schema.enrollments), [{**_enrollment("c1", "active"), "journey_id": "drip", **waiting}]
        )
    migrate.upgrade(db)
    email = RecordingEmail()
    engine = engines.Engine(
        world.settings,
        clock=ManualClock(NOW),
        database=db,
        catalog=engines.load_catalog(world.settings),
        email=email,
        webhooks=RecordingWebhook(),
    )

    early = engine.tick(NOW + timedelta(days=1))
    later = engine.tick(NOW + timedelta(days=2, minutes=1))

    assert [str(m) for m in early.moves] == [
        "drip: moved 1 from 'wait@1' to 'welcome>wait' (step id upgraded)"
    ]
    assert early.dispatched.sent == 0
    assert [m.subject for m in email.sent] == ["Tips"] and later.moves == []


def test_a_delivery_held_before_0012_gets_the_code_of_its_reason_text(db: database.Database) -> None:
    migrate.upgrade(db, "0011")
    reasons = {
        "cap": "held: weekly email cap reached",
        "window": "held: outside the send window",
        "provider": "held: provider rate limit (HTTP 429)",
        "webhook": "held: webhook rate limit (csm-alerts: HTTP 429 rate_limited)",
        "failed": "550 rejected",
        "sent": None,
    }
    row = {"enrollment_id": 1, "journey_id": "j", "step_id": "s", "channel": "email", "due_at": NOW}
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO delivery (id, enrollment_id, journey_id, step_id, channel, recipient, status, "
                "status_reason, attempts, due_at, created_at) VALUES (:id, :enrollment_id, :journey_id, "
                ":step_id, :channel, :id, :status, :reason, 0, :due_at, :due_at)"
            ),
            [
                {**row, "id": key, "status": "queued" if reason else "sent", "reason": reason}
                for key, reason in reasons.items()
            ],
        )
    migrate.upgrade(db)
    with db.begin() as conn:
        codes = dict(conn.execute(text("SELECT id, hold_code FROM delivery")).all())
    assert codes == {
        "cap": "weekly_cap",
        "window": "send_window",
        "provider": "provider_rate_limit",
        "webhook": "webhook_rate_limit",
        "failed": None,
        "sent": None,
    }


def test_revenue_rows_stored_before_0021_get_their_revenue_month_states(db: database.Database) -> None:
    migrate.upgrade(db, "0019")
    rows = [
        ("acme", "2025-12-10 00:00:00", 50.0, "starter"),
        ("acme", "2026-01-05 00:00:00", 80.0, "pro"),
        ("acme", "2026-01-25 00:00:00", 0.0, None),
        ("globex", "2026-03-01 00:00:00", 30.0, "starter"),
    ]
    with db.begin() as conn:
        conn.execute(
            insert(schema.table(schema.Revenue)),
            [
                {
                    "account_id": a,
                    "effective_at": datetime.fromisoformat(at).replace(tzinfo=UTC),
                    "mrr": m,
                    "plan": p,
                }
                for a, at, m, p in rows
            ],
        )
    migrate.upgrade(db)
    with db.begin() as conn:
        found = conn.execute(
            text(
                "SELECT boundary, account_id, mrr, plan, prev_mrr, next_boundary FROM revenue_month"
                " ORDER BY account_id, boundary"
            )
        ).all()
    jan, feb, mar = 2026 * 12, 2026 * 12 + 1, 2026 * 12 + 2  # month numbers: year * 12 + month - 1
    assert [tuple(r) for r in found] == [
        (jan, "acme", 50.0, "starter", 0.0, feb),
        (feb, "acme", 0.0, None, 50.0, None),  # January's last row
        (mar, "globex", 30.0, "starter", 0.0, None),  # a month's first instant belongs to its own boundary
    ]


def test_a_change_logged_before_0025_names_no_fact_and_later_ones_do(db: database.Database) -> None:
    """Upgraded from 0006 with data on the way (0012 rebuilds tables on SQLite): the triggers of each revision
    write the log's columns of that revision; 0025 makes them write the fact."""
    migrate.upgrade(db, "0006")
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO account (id, name, plan, mrr, touch, touch_explicit, traits) "
                "VALUES ('acme', 'Acme', 'pro', 10, 'tech', false, '{}')"
            )
        )
    migrate.upgrade(db, "0024")
    with db.begin() as conn:
        conn.execute(text("UPDATE account SET plan = 'business' WHERE id = 'acme'"))
    migrate.upgrade(db)
    with db.begin() as conn:
        conn.execute(text("UPDATE account SET plan = 'team' WHERE id = 'acme'"))
        facts = conn.execute(text("SELECT account_id, fact FROM subject_change ORDER BY seq")).all()
    # SQLite logs an update's old and new row; PostgreSQL their UNION (one row here)
    assert [tuple(r) for r in facts] in (
        [("acme", None), ("acme", None), ("acme", "account"), ("acme", "account")],
        [("acme", None), ("acme", "account")],
    )


@pytest.mark.parametrize(
    ("table", "row"),
    [
        (schema.deliveries, {"status": "lost"}),
        (schema.deliveries, {"hold_code": "held: weekly email cap reached"}),
        (schema.enrollments, {"state": "paused"}),
        (schema.enrollments, {"state": "ended", "outcome": "won"}),
    ],
)
def test_the_schema_refuses_a_word_outside_its_vocabulary(
    db: database.Database, table: Any, row: dict[str, Any]
) -> None:
    migrate.upgrade(db)
    delivery = {
        "id": "d1",
        "enrollment_id": 1,
        "journey_id": "j",
        "step_id": "s",
        "channel": "email",
        "recipient": "c1",
        "due_at": NOW,
        "created_at": NOW,
    }
    valid = delivery if table is schema.deliveries else _enrollment("c1", "active")
    other = {"id": "d2", "recipient": "c2"} if table is schema.deliveries else {"subject_id": "c2"}
    with db.begin() as conn:  # the same row with the known words goes in
        conn.execute(insert(table), [valid])
    with pytest.raises(IntegrityError), db.begin() as conn:
        conn.execute(insert(table), [{**valid, **other, **row}])
