"""The two databases the store tests run on: a SQLite file, and PostgreSQL when CI names one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from engagement.store import schema

POSTGRES_ENV = "ENGAGEMENT_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The PostgreSQL test database's URL; skips the test when none is configured."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        pytest.skip(f"set {POSTGRES_ENV}=postgresql://user:password@host/db to run on PostgreSQL")
    return url


def url_for(backend: str, folder: Path) -> str:
    """A database URL for `backend`: a new SQLite file in `folder`, or the PostgreSQL test database."""
    return f"sqlite:///{folder / 'engagement.db'}" if backend == "sqlite" else postgres_url()


def drop_everything(engine: Engine) -> None:
    """Drop every table and Alembic's version row (a PostgreSQL database outlives each test)."""
    schema.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
