"""Schema migrations: run the Alembic revisions in `migrations/` against a Database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from engagement import errors
from engagement.store.database import Database

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate the database up to `revision` (a no-op when it is already there)."""
    with db.engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(db: Database, revision: str = "base") -> None:
    """Migrate the database down to `revision`; "base" drops every table."""
    with db.engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(db: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """The newest revision shipped with this code."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    if found is None:
        raise errors.EngagementError(f"no migration revisions found in {MIGRATIONS / 'versions'}")
    return found


def is_current(db: Database) -> bool:
    """Whether the database is at the newest revision."""
    return current(db) == head()


def _config() -> Config:
    if not (MIGRATIONS / "env.py").is_file():
        raise errors.EngagementError(
            f"migrations folder not found at {MIGRATIONS}; "
            "run from a source checkout, or use Database.create_all() for a throwaway database"
        )
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg
