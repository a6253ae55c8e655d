"""The database handle: engine set-up per dialect and dialect-neutral bulk writes."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import ColumnElement, func

from engagement import errors, holdout
from engagement.store import schema

CHUNK = 500


class DatabaseNotReady(errors.EngagementError):
    """The database has no engagement tables yet; run `engagement db upgrade` first."""


class Database:
    """One database: its engine, transactions and the few statements that differ by dialect."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: Engine = _make_engine(url, echo=echo)
        self.dialect: str = self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    def check_ready(self) -> None:
        """Raise DatabaseNotReady unless the schema has been created."""
        try:
            names = set(inspect(self.engine).get_table_names())
        except OperationalError as exc:
            raise errors.EngagementError(f"cannot open database {self.url}: {exc.orig}") from exc
        if not {"contact", "enrollment", "delivery"} <= names:
            raise DatabaseNotReady()

    def create_all(self) -> None:
        """Create every table directly (tests and throwaway copies; production uses Alembic)."""
        schema.metadata.create_all(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str],
        update: dict[str, Any] | Sequence[str] | None = None,
    ) -> None:
        """Insert rows; on a key conflict update `update` columns (or do nothing)."""
        for chunk in _chunks(rows):
            stmt = self._insert(table)
            if update is None:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
            else:
                values = update if isinstance(update, dict) else {c: stmt.excluded[c] for c in update}
                resolved = {k: (v(stmt.excluded) if callable(v) else v) for k, v in values.items()}
                stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=resolved)
            conn.execute(stmt, list(chunk))

    def insert_ignore(
        self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str] | None
    ) -> int:
        """Insert rows whose key is new; return how many were inserted."""
        inserted = 0
        returned = next(iter(table.primary_key.columns))
        for chunk in _chunks(rows):
            stmt = self._insert(table).on_conflict_do_nothing(index_elements=list(keys) if keys else None)
            inserted += len(conn.execute(stmt.returning(returned), list(chunk)).all())
        return inserted

    def insert_from_select(self, conn: Connection, table: Table, columns: list[str], query: Any) -> int:
        """INSERT … SELECT, skipping rows that hit any unique key; return rows inserted."""
        key = next(iter(table.primary_key.columns))
        stmt = self._insert(table).from_select(columns, query).on_conflict_do_nothing().returning(key)
        return sum(len(chunk) for chunk in conn.execute(stmt).partitions(10_000))

    def update_by_id(
        self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]], **fixed: Any
    ) -> None:
        """Update many rows at once: each dict names its row by `_id` and the columns to set."""
        if not rows:
            return
        columns = [name for name in rows[0] if name != "_id"]
        values = {name: bindparam(name) for name in columns} | fixed
        conn.execute(update(table).where(table.c.id == bindparam("_id")).values(values), list(rows))

    def least(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """The smaller of two values (min() on SQLite, LEAST() on PostgreSQL)."""
        return func.min(a, b) if self.dialect == "sqlite" else func.least(a, b)

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """The larger of two values (max() on SQLite, GREATEST() on PostgreSQL)."""
        return func.max(a, b) if self.dialect == "sqlite" else func.greatest(a, b)

    def advisory_lock(self, conn: Connection, name: str) -> None:
        """Hold a lock named `name` until this transaction ends (PostgreSQL; SQLite has one writer anyway)."""
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})

    def _insert(self, table: Table) -> Any:
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        raise errors.EngagementError(f"unsupported database {self.dialect}: use SQLite or PostgreSQL")


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _make_engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_setup)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _sqlite_setup(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.execute("PRAGMA foreign_keys=ON")
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")
    holdout.register_sqlite(dbapi_conn)
    try:
        dbapi_conn.execute("SELECT power(2, 1)")
    except sqlite3.OperationalError:  # SQLite built without math functions
        dbapi_conn.create_function("power", 2, math.pow, deterministic=True)


def scalar_list(conn: Connection, stmt: Any) -> list[Any]:
    """Run a one-column select and return its values."""
    return list(conn.execute(stmt).scalars())


__all__ = ["Database", "DatabaseNotReady", "scalar_list", "select"]
