"""The database handle: engine set-up per dialect and dialect-neutral bulk writes."""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import repeat
from operator import itemgetter
from types import FunctionType
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    String,
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
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import ColumnElement, func

from engagement import errors
from engagement.delivery import ids
from engagement.evaluation import holdout
from engagement.store import change_log, direct, progress, schema, types

CHUNK = 500
BULK = 5000  # rows a driver executemany gets at once
COMPILED = 200  # bulk statement shapes kept compiled


class DatabaseNotReady(errors.EngagementError):
    """The database has no engagement tables yet; run `engagement db upgrade` first."""


class Database:
    """One database: its engine, transactions and the few statements that differ by dialect."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine: Engine = _make_engine(url, echo=echo)
        self.dialect: str = self.engine.dialect.name
        self._compiled: dict[Any, Any] = {}  # bulk statements compiled for the driver, see _compile
        self._upserts: dict[Hashable, Any] = {}  # upsert statements by shape, see _upsert
        self._by_identity: dict[tuple[int, tuple[str, ...]], tuple[Any, Any, dict[str, Any]]] = {}
        self._progress_checked = False

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    def check_ready(self) -> None:
        """Raise DatabaseNotReady unless the schema has been created, and (once) progress.ProgressNotReady
        unless the database has what incremental evaluation and scoring need to track what they read."""
        try:
            names = set(inspect(self.engine).get_table_names())
        except OperationalError as exc:
            shown = make_url(self.url).render_as_string(
                hide_password=True
            )  # the message reaches logs and terminals
            raise errors.EngagementError(f"cannot open database {shown}: {exc.orig}") from exc
        if not {"contact", "enrollment", "delivery"} <= names:
            raise DatabaseNotReady()
        if not self._progress_checked:
            with self.engine.connect() as conn:
                progress.check(conn)
            self._progress_checked = True

    def create_all(self) -> None:
        """Create every table directly (tests and throwaway copies; production uses Alembic)."""
        schema.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            change_log.create(conn)

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
        only_if: Callable[[Any], ColumnElement[bool]] | None = None,
    ) -> None:
        """Insert rows; on a key conflict update `update` columns (or do nothing).

        `only_if(excluded)` limits the update to rows where it holds; the others are left unwritten
        (cheaper than rewriting a row with the value it already has).
        """
        if not rows:
            return
        self.executemany(conn, self._upsert(table, keys, update, only_if), rows)

    def _ignore(self, table: Table, keys: Sequence[str] | None) -> Any:
        """INSERT … ON CONFLICT DO NOTHING (on `keys`, or any unique key when None), built once per shape."""
        shape = ("ignore", table, None if keys is None else tuple(keys))
        stmt = self._upserts.get(shape)
        if stmt is None:
            stmt = self._insert(table).on_conflict_do_nothing(index_elements=list(keys) if keys else None)
            self._keep(shape, stmt)
        return stmt

    def _keep(self, shape: Hashable, stmt: Any) -> None:
        if len(self._upserts) >= COMPILED:
            self._upserts.clear()
        self._upserts[shape] = stmt

    def _upsert(
        self,
        table: Table,
        keys: Sequence[str],
        update: dict[str, Any] | Sequence[str] | None,
        only_if: Callable[[Any], ColumnElement[bool]] | None,
    ) -> Any:
        """The statement `upsert` runs, built once per shape (`_upsert_shape`): building it cost more than
        SQLite took to run most of them. The key holds the functions it names, so no other takes their id."""
        shape = _upsert_shape(table, keys, update, only_if)
        stmt = None if shape is None else self._upserts.get(shape)
        if stmt is not None:
            return stmt
        stmt = self._insert(table)
        if update is None:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        else:
            values = update if isinstance(update, dict) else {c: stmt.excluded[c] for c in update}
            resolved = {k: (v(stmt.excluded) if callable(v) else v) for k, v in values.items()}
            where = only_if(stmt.excluded) if only_if is not None else None
            stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=resolved, where=where)
        if shape is not None:
            self._keep(shape, stmt)
        return stmt

    def insert_ignore(
        self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str] | None
    ) -> int:
        """Insert rows whose key is new; return how many were inserted."""
        if not rows:
            return 0
        stmt = self._ignore(table, keys)
        counted = self._driver_executemany(conn, stmt, rows)
        if counted is not None:
            return counted
        # count what RETURNING gives back (psycopg reports no row count for executemany)
        returned = next(iter(table.primary_key.columns))
        return sum(len(conn.execute(stmt.returning(returned), list(chunk)).all()) for chunk in _chunks(rows))

    def executemany(self, conn: Connection, stmt: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Run one INSERT or UPDATE for many rows (all with the same keys)."""
        if rows and self._driver_executemany(conn, stmt, rows) is None:
            for chunk in _chunks(rows):
                conn.execute(stmt, list(chunk))

    def append(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Add rows (all with the same keys) to a table that has no unique key they could hit, at the
        driver's speed: COPY on PostgreSQL (SQLAlchemy's multi-row VALUES took ~4x the time for 1M rows),
        the executemany fast path on SQLite."""
        if not rows:
            return
        if self.dialect != "postgresql":
            self.executemany(conn, table.insert(), rows)
            return
        names = list(rows[0])
        columns = ", ".join(conn.dialect.identifier_preparer.quote(name) for name in names)
        driver = conn.connection.driver_connection
        assert driver is not None
        pick = itemgetter(*names)
        with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(pick(row) if len(names) > 1 else (pick(row),))

    def _driver_executemany(self, conn: Connection, stmt: Any, rows: Sequence[dict[str, Any]]) -> int | None:
        """On SQLite, run `stmt` for every row straight through the driver and return the rows changed.

        SQLAlchemy's per-row parameter handling costs more than SQLite itself, so the statement is compiled
        once and each row only passes through its columns' bind processors on its way to the driver's
        executemany. None (nothing done) on PostgreSQL, where SQLAlchemy batches rows into multi-row VALUES,
        and for rows that need Python-side column defaults.
        """
        if self.dialect != "sqlite":
            return None
        keys = list(rows[0])
        compiled, bound = self._compile(conn, stmt, keys)
        if compiled.insert_prefetch or compiled.update_prefetch or compiled.returning:
            return None
        processors = compiled._bind_processors  # what SQLAlchemy applies to each row's values
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        given = set(keys)
        columns: list[Iterable[Any]] = []  # built a column at a time: each step runs over all rows in C
        for name in names:
            convert = processors.get(name)
            if name in given:
                values: Iterable[Any] = map(itemgetter(name), rows)
                columns.append(map(convert, values) if convert is not None else values)
            else:  # a value bound in the statement itself
                value = bound[name]
                columns.append(repeat(convert(value) if convert is not None else value, len(rows)))
        params: list[Any] = list(zip(*columns, strict=False)) if columns else [()] * len(rows)
        if not compiled.positional:
            params = [dict(zip(names, values, strict=True)) for values in params]
        changed = 0
        for start in range(0, len(params), BULK):
            changed += conn.exec_driver_sql(compiled.string, params[start : start + BULK]).rowcount
        return changed

    def _compile(self, conn: Connection, stmt: Any, keys: list[str]) -> tuple[Any, dict[str, Any]]:
        """`stmt` compiled for rows with `keys` (once per statement shape) and the values it binds itself.

        The cache is keyed like SQLAlchemy's own statement cache: the same shape with other literal values
        (a new `now`, say) reuses the compiled form, and those values come back in the second element.
        """
        mine = (id(stmt), tuple(keys))  # the very statement compiled before: no cache key to make
        found = self._by_identity.get(mine)
        if found is not None and found[0] is stmt:
            return found[1], found[2]
        cache_key = stmt._generate_cache_key()
        if cache_key is None:  # a statement SQLAlchemy cannot cache either
            compiled = stmt.compile(dialect=conn.dialect, column_keys=keys)
            return compiled, compiled.construct_params(dict.fromkeys(keys))
        key = (cache_key.key, tuple(keys))
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) >= COMPILED:
                self._compiled.clear()
            compiled = stmt.compile(dialect=conn.dialect, column_keys=keys, cache_key=cache_key)
            self._compiled[key] = compiled
        bound = compiled.construct_params(dict.fromkeys(keys), extracted_parameters=cache_key.bindparams)
        if len(self._by_identity) >= COMPILED:
            self._by_identity.clear()
        self._by_identity[mine] = (stmt, compiled, bound)  # holds `stmt`: its id is not handed out again
        return compiled, bound

    def insert_new(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str] | None,
        column: str,
    ) -> list[Any]:
        """Insert rows that hit no unique key (`keys`, or any when None); return `column` of each row inserted."""
        found: list[Any] = []
        stmt = self._ignore(table, keys).returning(table.c[column])
        for chunk in _chunks(rows):
            found.extend(conn.execute(stmt, list(chunk)).scalars())
        return found

    def insert_from_select(self, conn: Connection, table: Table, columns: list[str], query: Any) -> int:
        """INSERT … SELECT, skipping rows that hit any unique key; return rows inserted.

        The count is the statement's own: the driver's row count (which SQLAlchemy keeps for an INSERT only
        when asked; SQLite's, like changes(), leaves out what triggers wrote), or SQLite's changes() where
        Python's sqlite3 gives -1 (a statement that opens with WITH). RETURNING every key only to count them
        made SQLite buffer them all: about a tenth of the first tick.
        """
        return self.inserted(conn, self.insert_select(table, columns, query))

    def insert_select(self, table: Table, columns: list[str], query: Any) -> Any:
        """The statement `insert_from_select` runs, to build once and run many times with `inserted`."""
        return self._insert(table).from_select(columns, query).on_conflict_do_nothing()

    def inserted(
        self, conn: Connection, stmt: Any, params: dict[str, Any] | None = None, *, kept: bool = False
    ) -> int:
        """Run an `insert_select` statement with `params`; return rows inserted (as `insert_from_select`).

        `kept`: the caller keeps `stmt` to run it again, so it is compiled once (store/direct.py).
        """
        if kept:
            result = direct.execute(conn, stmt, params)
        else:
            result = conn.execute(stmt, params, execution_options={"preserve_rowcount": True})
        if self.dialect == "sqlite" and result.rowcount < 0:
            return int(conn.execute(CHANGES).scalar_one())
        return int(result.rowcount)

    def upsert_from_select(
        self,
        conn: Connection,
        table: Table,
        columns: list[str],
        query: Any,
        keys: Sequence[str],
        update: Sequence[str],
        only_if: Callable[[Any], ColumnElement[bool]],
    ) -> int:
        """INSERT … SELECT; a row whose `keys` exist updates its `update` columns where `only_if(excluded)` holds.
        Return the rows inserted or updated (as `inserted` counts).

        The query must not give one key twice (PostgreSQL updates a row at most once per statement) and
        should have a WHERE clause (SQLite reads `SELECT … ON CONFLICT` ambiguously without one).
        """
        stmt = self._insert(table).from_select(columns, query)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: stmt.excluded[c] for c in update},
            where=only_if(stmt.excluded),
        )
        return self.inserted(conn, stmt)

    def insert_from_select_returning(
        self, conn: Connection, table: Table, columns: list[str], query: Any, returning: Sequence[str]
    ) -> Iterator[Any]:
        """INSERT … SELECT, skipping rows that hit any unique key; yield `returning` of the rows inserted.

        The rows come a partition at a time, so a caller that folds them as they come never holds them all.
        """
        stmt = self.insert_select(table, columns, query).returning(*(table.c[name] for name in returning))
        return self.inserted_returning(conn, stmt)

    def inserted_returning(
        self, conn: Connection, stmt: Any, params: dict[str, Any] | None = None, *, kept: bool = False
    ) -> Iterator[Any]:
        """Run an `insert_select(…).returning(…)` statement with `params`; yield the rows it returns, a
        partition at a time (as `insert_from_select_returning`). `kept` as for `inserted`."""
        if kept:
            result: Any = direct.execute(conn, stmt, params)
        else:
            result = conn.execute(stmt, params)
        for chunk in result.partitions(10_000):
            yield from chunk

    def update_by_id(
        self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]], **fixed: Any
    ) -> None:
        """Update many rows at once: each dict names its row by `_id` and the columns to set."""
        if not rows:
            return
        columns = [name for name in rows[0] if name != "_id"]
        values = {name: bindparam(name) for name in columns} | fixed
        self.executemany(conn, update(table).where(table.c.id == bindparam("_id")).values(values), rows)

    def greatest(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """The larger of two values (max() on SQLite, GREATEST() on PostgreSQL)."""
        return func.max(a, b) if self.dialect == "sqlite" else func.greatest(a, b)

    def refresh_statistics(self, tables: Iterable[str]) -> None:
        """PostgreSQL: ANALYZE these tables now, after a write that grew them a lot.

        Autovacuum would, but up to a minute later: a tick planned in between with the statistics of an
        empty `enrollment` nested-looped over 100,000 log rows against 1.46M enrollments for six minutes
        (bench/RESULTS.md). SQLite keeps no statistics unless ANALYZE was run by hand; left alone.
        """
        if self.dialect != "postgresql":
            return
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("ANALYZE " + ", ".join(sorted(set(tables))))

    def forget_old_pages(self) -> bool:
        """SQLite: copy the write-ahead log into the database file and truncate it, so no earlier version
        of a page (an erased address, say) stays on disk; True when done, False when other connections
        kept it busy past the busy timeout. Freed content in the file itself is zeroed (secure_delete).

        PostgreSQL keeps dead row versions until VACUUM reuses their space, and its WAL and backups
        beyond that; nothing here reaches those. A no-op there.
        """
        if self.dialect != "sqlite":
            return True
        with self.engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0]
        return not busy

    def advisory_lock(self, conn: Connection, name: str) -> None:
        """Hold a lock named `name` until this transaction ends (PostgreSQL; SQLite has one writer anyway)."""
        self.advisory_locks(conn, [name])

    def advisory_locks(self, conn: Connection, names: Iterable[str]) -> None:
        """Hold a lock per name until this transaction ends, taken in one order so no two holders deadlock."""
        keys = sorted(set(names))
        if self.dialect == "postgresql" and keys:
            conn.execute(LOCK_IN_ORDER, {"names": keys})

    def _insert(self, table: Table) -> Any:
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        raise errors.EngagementError(f"unsupported database {self.dialect}: use SQLite or PostgreSQL")


CHANGES = select(func.changes())
LOCK_IN_ORDER = text(
    "SELECT pg_advisory_xact_lock(h) FROM"
    " (SELECT DISTINCT hashtext(n) AS h FROM unnest(CAST(:names AS text[])) AS n ORDER BY h) AS ordered"
)


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _upsert_shape(
    table: Table,
    keys: Sequence[str],
    update: dict[str, Any] | Sequence[str] | None,
    only_if: Callable[[Any], ColumnElement[bool]] | None,
) -> Hashable | None:
    """What names an upsert statement (see `Database._upsert`); None when something in it cannot.

    Functions count by identity: one made at each call (a lambda in the call) names a new shape each time,
    which costs what building it did before; the callers run every tick pass functions defined once.
    """
    if isinstance(update, dict):
        if not all(isinstance(v, str | FunctionType) for v in update.values()):
            return None
        named: Hashable = tuple(update.items())
    else:
        named = None if update is None else tuple(update)
    if only_if is not None and not isinstance(only_if, FunctionType):
        return None
    return (table, tuple(keys), isinstance(update, dict), named, only_if)


def _make_engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30}, json_serializer=types.dumps)
        event.listen(engine, "connect", _sqlite_setup)
        event.listen(engine, "checkin", _sqlite_checkin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, echo=echo, pool_pre_ping=True, json_serializer=types.dumps)


def _sqlite_setup(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    dbapi_conn.execute("PRAGMA foreign_keys=ON")
    # deleted and overwritten content is zeroed, not left in free space (erasure relies on it; Debian's
    # SQLite, where the benchmarks ran, is built with it on, others are not)
    dbapi_conn.execute("PRAGMA secure_delete=ON")
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")
    # checkpoint every ~40 MB of WAL, not SQLite's 4 MB: an ingest request writes a few MB, and a checkpoint
    # (with its fsync) on nearly every request took about a third of the ingest time (bench/RESULTS.md)
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=10000")
    # Statement journals (the pages a statement changes, kept so that it alone can be undone) and temporary
    # tables in memory: SQLite moves a statement's journal to a file in /var/tmp once it passes 64 KiB, and
    # every later statement of the transaction writes there too; in the demo that was three quarters of all
    # write calls (1.9M of 2.5M), and it left copies of changed rows, erased ones included, in files outside
    # the database. Sorts still spill to files past the page cache (SQLite's sorter does not use temp_store).
    dbapi_conn.execute("PRAGMA temp_store=MEMORY")
    holdout.register_sqlite(dbapi_conn)
    ids.register_sqlite(dbapi_conn)
    try:
        dbapi_conn.execute("SELECT power(2, 1)")
    except sqlite3.OperationalError:  # SQLite built without math functions
        dbapi_conn.create_function("power", 2, math.pow, deterministic=True)


_ON_DISK = "engagement.temporary_on_disk"  # the connection's info: its temporary tables are in files


def temporary_tables_on_disk(conn: Connection) -> None:
    """On SQLite, keep this connection's temporary tables in files until it goes back to the pool (they
    are in memory otherwise, see _sqlite_setup): for a staging table holding a whole import (1M revenue
    rows held in memory took 180 MB more). Call before the connection makes a temporary table."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA temp_store=FILE")
        conn.info[_ON_DISK] = True


def _sqlite_checkin(dbapi_conn: sqlite3.Connection, record: Any) -> None:
    """Back to the pool, its transaction ended: temporary storage in memory again."""
    if record.info.pop(_ON_DISK, False):
        dbapi_conn.execute("PRAGMA temp_store=MEMORY")


def among(conn: Connection, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`. On SQLite the values travel as one JSON parameter read by `json_each`
    (an index lookup per value all the same): SQLAlchemy's handling of one parameter per value
    costs more than the lookups themselves."""
    if conn.dialect.name == "sqlite":
        listed = func.json_each(json.dumps(list(values))).table_valued("value")
        return cast(ColumnElement[bool], column.in_(select(listed.c.value)))
    return cast(ColumnElement[bool], column.in_(values))


@functools.cache  # the same clause for every statement that takes one (SQLAlchemy elements are immutable)
def among_param(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """`column IN :name` as `among` writes it, for a statement built once: pass `among_value(dialect,
    values)` as parameter `name` each time it runs."""
    if dialect == "sqlite":
        listed = func.json_each(bindparam(name, type_=String)).table_valued("value")
        return cast(ColumnElement[bool], column.in_(select(listed.c.value)))
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))


def among_value(dialect: str, values: Sequence[Any]) -> Any:
    """The parameter `among_param` reads: the values as one JSON text on SQLite, a list elsewhere."""
    return json.dumps(list(values)) if dialect == "sqlite" else list(values)


def scalar_list(conn: Connection, stmt: Any) -> list[Any]:
    """Run a one-column select and return its values."""
    return list(conn.execute(stmt).scalars())


__all__ = ["Database", "DatabaseNotReady", "among", "scalar_list", "select"]
