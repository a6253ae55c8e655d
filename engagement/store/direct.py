"""Statements kept by their callers, compiled once and run straight through the driver on SQLite.

Each execution through SQLAlchemy makes a cache key from the whole statement, looks it up, resolves and
converts every parameter and sets up a result: for the evaluation's statements (built once per journey,
run at every tick with new parameters, see evaluation/statements.py) that cost about as much as SQLite
took to run them. Here such a statement is compiled once; a run converts its parameters and the rows'
values with the same bind and result processors SQLAlchemy applies, and errors come wrapped as
SQLAlchemy wraps them (StatementError for a value a bind processor refuses). Anything this does not
handle (PostgreSQL, parameters expanded at execution, Python-side column defaults, result columns that
are not plain names) runs through SQLAlchemy.
"""

from __future__ import annotations

import collections
import keyword
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound

MOST = 2_000  # statements kept compiled; past this the cache starts over
Convert = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a run needs: the SQL, and for each `?` the parameter's name, key and bind processor."""

    sql: str
    slots: tuple[tuple[str, str, Convert], ...]
    bound: Mapping[str, Any]  # the values the statement binds itself
    required: frozenset[str]  # the keys a run must be given
    row: type | None  # the result rows' type, None when the statement returns none
    results: tuple[Convert, ...]


# id(statement) -> the statement and its plan (None: SQLAlchemy runs it)
_plans: dict[int, tuple[Any, _Plan | None]] = {}
# what the driver path always gives: the statement's row count, whatever its kind
ROWCOUNT = {"preserve_rowcount": True}


def execute(conn: Connection, stmt: Any, params: Mapping[str, Any] | None = None) -> Any:
    """Run `stmt` with `params`: the result (`Rows` here, SQLAlchemy's own when it runs it).

    Meant for statements run many times: each one is kept (with its compiled form) until `MOST` are.
    """
    given = params or {}
    plan = _plan_of(conn, stmt)
    if plan is None or not plan.required <= given.keys():  # a missing value: SQLAlchemy says which
        return conn.execute(stmt, dict(given), execution_options=ROWCOUNT)
    bound = plan.bound
    args: list[Any] = []
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    try:
        for name, key, convert in plan.slots:
            value = given[key] if key in given else given[name] if name in given else bound[name]
            args.append(value if convert is None else convert(value))
        cursor = driver.execute(plan.sql, args)
        found = cursor.fetchall() if plan.row is not None else []
    except Exception as exc:  # as SQLAlchemy wraps them: a bad value, or the database's own error
        raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error, dialect=conn.dialect) from exc
    return Rows(plan, found, cursor.rowcount)


def _plan_of(conn: Connection, stmt: Any) -> _Plan | None:
    if conn.dialect.name != "sqlite":
        return None
    entry = _plans.get(id(stmt))
    if entry is not None and entry[0] is stmt:
        return entry[1]
    if len(_plans) >= MOST:
        _plans.clear()
    plan = _make(conn, stmt)
    _plans[id(stmt)] = (stmt, plan)  # the entry holds the statement: no other takes its id
    return plan


def _make(conn: Connection, stmt: Any) -> _Plan | None:
    compiled = stmt.compile(dialect=conn.dialect)
    if (
        not compiled.positional
        or compiled.post_compile_params
        or compiled.literal_execute_params
        or compiled.escaped_bind_names
        or compiled.insert_prefetch
        or compiled.update_prefetch
        or any(bind.callable is not None for bind in compiled.bind_names)
    ):
        return None
    key_of = {name: bind.key for bind, name in compiled.bind_names.items()}
    processors = compiled._bind_processors
    names = list(compiled.positiontup or [])
    slots = tuple((name, key_of[name], processors.get(name)) for name in names)
    required = frozenset(bind.key for bind in compiled.bind_names if bind.required)
    bound = compiled.construct_params(_check=False)  # with the values of any `.params()` call
    columns = compiled._result_columns
    row: type | None = None
    results: tuple[Convert, ...] = ()
    if columns:
        keys = [column.keyname for column in columns]
        plain = all(k.isidentifier() and not k.startswith("_") and not keyword.iskeyword(k) for k in keys)
        if not plain or len(set(keys)) != len(keys) or not compiled._ordered_columns:
            return None
        row = collections.namedtuple("Row", keys)  # type: ignore[misc, no-redef]
        results = tuple(c.type._cached_result_processor(conn.dialect, None) for c in columns)
    elif compiled.returning or not (compiled.isinsert or compiled.isupdate or compiled.isdelete):
        return None  # rows expected, but no columns to name them
    return _Plan(compiled.string, slots, bound, required, row, results)


class Rows:
    """A statement's rows (values processed as SQLAlchemy's result would) and its row count."""

    def __init__(self, plan: _Plan, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.rowcount = rowcount
        self._rows: list[Any]
        if plan.row is None:
            self._rows = []
        elif any(p is not None for p in plan.results):
            make, results = plan.row._make, plan.results  # type: ignore[attr-defined]
            self._rows = [
                make([v if p is None else p(v) for p, v in zip(results, r, strict=True)]) for r in rows
            ]
        else:
            self._rows = list(map(plan.row._make, rows))  # type: ignore[attr-defined]

    def all(self) -> list[Any]:
        """Every row."""
        return self._rows

    def scalars(self) -> Iterator[Any]:
        """The first column of every row."""
        return (r[0] for r in self._rows)

    def one(self) -> Any:
        """The only row; SQLAlchemy's NoResultFound or MultipleResultsFound otherwise."""
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0]

    def scalar_one(self) -> Any:
        """The first column of the only row."""
        return self.one()[0]

    def partitions(self, size: int) -> Iterator[Sequence[Any]]:
        """The rows, `size` at a time."""
        for start in range(0, len(self._rows), size):
            yield self._rows[start : start + size]
