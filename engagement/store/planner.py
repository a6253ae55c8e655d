"""Index-steering hints: where a statement is written so the engine picks the index we measured best.

Every hint in the package is one of these, and `tests/test_query_plans.py` locks each hinted statement
to the plan it is steered to (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, Table
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from engagement import errors
from engagement.store import functions


class Unindexed(FunctionElement[Any]):
    """A date or time column no engine may answer from an index: the column plus nothing (`+col` on
    SQLite, `col + 0` or `col + interval '0 seconds'` on PostgreSQL), the same value.

    For whole-day ranges on created_at and the like (conditions/sql.py). Nearly everyone signed up more
    than a week ago, so an index range on created_at selects most contacts in a random order of ids, and
    every other lookup of the evaluation (events, milestones, scores, enrollments: all keyed by contact
    id) then lands on a random page. Without it the engine walks the contacts table and those lookups
    stay close together: selecting one journey's candidates over 1M contacts took 2 s instead of 8 s on
    SQLite and 5.5 s instead of 13.9 s on PostgreSQL, which chose the index too (bench/RESULTS.md). A
    selective range loses its index, but only in a full pass (incremental passes are driven by the
    subjects' ids), where a scan costs a second or two at 1M.
    """

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


def _unindexed_pg(element: Unindexed, args: list[str]) -> str:
    # an expression no index holds, of the same value and type
    zero = "0" if element.type._type_affinity is Date else "interval '0 seconds'"
    return f"({args[0]} + {zero})"


functions.render(
    Unindexed, default=lambda _, args: args[0], sqlite=lambda _, args: f"+{args[0]}", postgresql=_unindexed_pg
)


class UnindexedOnSqlite(FunctionElement[Any]):
    """A column SQLite may not pick an index by (its documented unary-plus idiom); the column elsewhere.

    For a GROUP BY whose order an index would give (reports/queries.py's unsent deliveries): SQLite would
    walk that index over the whole table to skip a sort, rather than read the few rows another index finds.
    """

    inherit_cache = True
    name = "unindexed_on_sqlite"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


functions.render(UnindexedOnSqlite, default=lambda _, args: args[0], sqlite=lambda _, args: f"+{args[0]}")


def indexed_by(dialect: str, table: Table, index: str) -> str:
    """The table's name in a FROM clause, on SQLite with `INDEXED BY index` (SQLite then uses that index
    or fails the statement: it never falls back to another plan silently); plain elsewhere."""
    if index not in {i.name for i in table.indexes}:
        raise errors.EngagementError(f"table {table.name} has no index {index}: see store/schema.py")
    return f"{table.name} INDEXED BY {index}" if dialect == "sqlite" else table.name


__all__ = ["Unindexed", "UnindexedOnSqlite", "indexed_by"]
