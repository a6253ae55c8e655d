"""Alembic environment: migrates `engagement.store.schema.metadata` on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel.sql.sqltypes import AutoString

from engagement import errors
from engagement.store import database, schema, types

config = context.config
target_metadata = schema.metadata


def render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Render project types as plain SQLAlchemy types so revisions never import the package."""
    if kind != "type":
        return False
    if isinstance(obj, types.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, JSONB):  # alembic's default rendering names Text without importing it
        autogen.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        render_item=render_item,
        **kwargs,
    )


def run_offline() -> None:
    """Emit the SQL for the migrations instead of running it."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    """Run the migrations on an open connection."""
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise errors.EngagementError(
            "no database to migrate: pass a connection in config.attributes['connection'] "
            "or set the sqlalchemy.url option"
        )
    return url


def main() -> None:
    """Migrate the given connection, else the database named by sqlalchemy.url."""
    if context.is_offline_mode():
        run_offline()
        return
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        run_online(connection)
        return
    db = database.Database(_url())
    try:
        with db.engine.begin() as conn:
            run_online(conn)
    finally:
        db.dispose()


main()
