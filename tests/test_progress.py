"""Opening a PostgreSQL database checks what tracking progress needs, and says what is missing and the fix.

Incremental evaluation and scoring track what they have read through store/progress.py: the change-log
triggers, the transaction-id functions of PostgreSQL 13+, and the rights to write and prune the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import migrated, url_for
from sqlalchemy import text
from typer.testing import CliRunner

from engagement import errors
from engagement.cli import app
from engagement.store import progress
from engagement.store.database import Database


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[Database]:
    with migrated(url_for(backend, tmp_path)) as handle:
        yield handle


@pytest.fixture
def pg(db: Database) -> Database:
    """The database, on PostgreSQL only: the start-up check is PostgreSQL's (SQLite has neither
    transaction ids, nor roles, nor triggers to disable)."""
    if db.dialect == "sqlite":
        pytest.skip("nothing to check on SQLite")
    return db


def opened(db: Database) -> None:
    """Open the database as a process starting up does."""
    fresh = Database(db.url)
    try:
        fresh.check_ready()
    finally:
        fresh.dispose()


def run(db: Database, statement: str) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql(statement)


def test_a_migrated_database_has_what_progress_needs(db: Database) -> None:
    opened(db)


def test_a_dropped_trigger_is_named_and_db_upgrade_puts_it_back(pg: Database, tmp_path: Path) -> None:
    run(pg, "DROP TRIGGER subject_change_event_insert ON event")
    with pytest.raises(progress.ProgressNotReady) as raised:
        opened(pg)
    assert "event.subject_change_event_insert" in str(raised.value)
    assert "`engagement db upgrade`" in str(raised.value)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{pg.url}"\n')
    result = CliRunner().invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    opened(pg)


def test_a_disabled_trigger_is_named(pg: Database) -> None:
    run(pg, "ALTER TABLE contact DISABLE TRIGGER subject_change_contact_update")
    with pytest.raises(progress.ProgressNotReady, match=r"contact\.subject_change_contact_update"):
        opened(pg)


def test_a_missing_change_log_asks_for_the_migrations(pg: Database) -> None:
    run(pg, "DROP TABLE subject_change CASCADE")
    with pytest.raises(
        progress.ProgressNotReady, match=r"subject_change is missing: run `engagement db upgrade`"
    ):
        opened(pg)


def test_a_role_that_may_not_write_the_change_log_is_told_the_grants(pg: Database) -> None:
    with pg.begin() as conn:
        role = conn.execute(text("SELECT lower(current_database()) || '_progress_reader'")).scalar_one()
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        conn.exec_driver_sql(f"CREATE ROLE {role}")
        conn.exec_driver_sql(f"GRANT SELECT ON subject_change TO {role}")
    try:
        with pg.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL ROLE {role}")
            with pytest.raises(progress.ProgressNotReady) as raised:
                progress.check(conn)
        message = str(raised.value)
        assert f"GRANT INSERT, DELETE ON subject_change TO {role}" in message, message
        assert f"GRANT USAGE ON SEQUENCE public.subject_change_seq_seq TO {role}" in message, message
    finally:
        with pg.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")


def test_a_database_that_cannot_be_opened_is_named_without_its_password() -> None:
    db = Database("postgresql+psycopg://engagement:hunter2-secret@127.0.0.1:1/engagement")  # nothing listens
    try:
        with pytest.raises(errors.EngagementError) as caught:
            db.check_ready()
    finally:
        db.dispose()

    assert "hunter2-secret" not in str(caught.value)
    assert "engagement:***@127.0.0.1:1/engagement" in str(caught.value)
