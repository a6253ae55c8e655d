"""The two databases the store tests run on: SQLite, and PostgreSQL when CI names one.

The only place that reads the PostgreSQL URL; tests ask for the `backend` fixture (tests/conftest.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from engagement.store import migrate, schema
from engagement.store.database import Database

POSTGRES_ENV = "ENGAGEMENT_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def postgres_url() -> str:
    """The PostgreSQL test database's URL; skips the test when none is configured."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(f"set {POSTGRES_ENV}=postgresql://user:password@host/db to run on PostgreSQL")
    return url


def url_for(backend: str, folder: Path | None = None) -> str:
    """A database URL for `backend`: a new SQLite file in `folder` (in memory without one), or the
    PostgreSQL test database."""
    if backend != "sqlite":
        return postgres_url()
    return f"sqlite:///{folder / 'engagement.db'}" if folder is not None else "sqlite://"


def drop_everything(engine: Engine) -> None:
    """Drop every table and Alembic's version row (a PostgreSQL database outlives each test)."""
    schema.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@contextmanager
def migrated(url: str) -> Iterator[Database]:
    """A database migrated to the newest revision, its tables dropped again afterwards."""
    handle = Database(url)
    drop_everything(handle.engine)
    migrate.upgrade(handle)
    try:
        yield handle
    finally:
        drop_everything(handle.engine)
        handle.dispose()


class Analyses:
    """How often PostgreSQL has analysed one table, to see whether something ran ANALYZE on it."""

    def __init__(self, engine: Engine, table: str) -> None:
        self.engine = engine
        self.count = text(
            "SELECT coalesce(analyze_count, 0) FROM pg_stat_user_tables"
            " WHERE relname = :table AND schemaname = current_schema()"
        ).bindparams(table=table)
        self.before = self.now()

    def now(self) -> int:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            return int(conn.execute(self.count).scalar_one())

    def happened(self, expected: bool) -> bool:
        """Whether it was analysed since; waits up to 5 s for a count `expected` to change (the statistics
        collector reports a moment later), and only a moment when a change is not expected."""
        after = self.now()
        for _ in range(50):
            if after != self.before or not expected:
                break
            time.sleep(0.1)
            after = self.now()
        return after > self.before
