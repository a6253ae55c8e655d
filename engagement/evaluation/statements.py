"""Evaluation statements built once per journey and shape, then run at every tick with new parameters.

Building a statement (SQLAlchemy's expression objects, then its cache key) cost more than SQLite took to
run most of the ~76 a demo tick runs. Their instants are parameters named after their distance from the
evaluation's `now` (`sql.instant`), and the other values that change (subject ids, a mark) are named
parameters, so a statement built at one tick serves every later one: only the parameters are recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from engagement.conditions import sql
from engagement.conditions.context import EvalContext
from engagement.store import direct

MOST = 2_000  # statements kept; past this the cache starts over (journey files changed many times, say)
_built: dict[Hashable, tuple[object, Any, tuple[str, ...]]] = {}


def run(
    conn: Connection,
    key: Hashable,
    owner: object,
    contexts: Sequence[EvalContext],
    build: Callable[[], Any],
    params: Mapping[str, Any] | None = None,
    **options: Any,
) -> Any:
    """Execute the statement `build()` makes, built once per `key` and `owner` (the journey, compared by
    identity), with the instants of `contexts` and `params`; return the result.

    `key` must name everything besides `owner`, the instants and `params` that the statement depends on.
    """
    statement, values = prepared(conn, key, owner, contexts, build)
    if options:
        return conn.execute(statement, {**values, **(params or {})}, execution_options=options)
    return direct.execute(conn, statement, {**values, **(params or {})})


def prepared(
    conn: Connection, key: Hashable, owner: object, contexts: Sequence[EvalContext], build: Callable[[], Any]
) -> tuple[Any, dict[str, Any]]:
    """The statement under (dialect, `owner`, `key`) and the values of its instants at `contexts`."""
    full = (conn.dialect.name, id(owner), key)  # the entry holds `owner`: no other object takes its id
    entry = _built.get(full)
    if entry is not None and entry[0] is owner:
        try:
            return entry[1], sql.instants(entry[2], {c.name: c for c in contexts})
        except OverflowError:
            pass  # an instant beyond the calendar reads differently: built for this tick alone below
    for ctx in contexts:
        ctx.unreusable.clear()
    statement = build()
    if not any(ctx.unreusable for ctx in contexts):
        if len(_built) >= MOST:
            _built.clear()
        _built[full] = (owner, statement, sql.instant_keys(statement))
    return statement, {}
