"""Which events are product use: the `[events] not_activity` glob patterns, as SQL and in Python.

A pattern matches the whole event name; `*` stands for any run of characters and `?` for one, and
matching is case-sensitive on both engines: SQLite's GLOB, PostgreSQL's LIKE with `%` and `_` escaped.
Payments, invoices, tickets and survey answers happen to an account, not in the product: they never
count as active days, in the engagement score or in scorecards.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from sqlalchemy import Boolean, String, literal, not_, or_, true
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from engagement.store import functions

ENGINE_SOURCE = "engine"  # events the engine writes about itself are not product use


class _Glob(FunctionElement[bool]):
    """`value GLOB pattern` (SQLite) or `value LIKE pattern` with the glob translated (PostgreSQL)."""

    inherit_cache = True
    name = "glob_match"
    type = Boolean()


def _like(pattern: str) -> str:
    escaped = pattern.replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


functions.render(  # arguments: the value, the glob, the glob as a LIKE pattern (bound, not in the text)
    _Glob,
    sqlite=lambda _, args: f"({args[0]} GLOB {args[1]})",
    postgresql=lambda _, args: f"({args[0]} LIKE {args[2]} ESCAPE '\\')",
)


def _glob(name: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
    return _Glob(name, literal(pattern, String), literal(_like(pattern), String))


def is_activity(name: ColumnElement[str], patterns: Sequence[str]) -> ColumnElement[bool]:
    """SQL: the event name matches none of the patterns."""
    if not patterns:
        return true()
    return not_(or_(*(_glob(name, p) for p in patterns)))


def counts_as_activity(name: str, patterns: Sequence[str]) -> bool:
    """Python twin of `is_activity`: case-sensitive, `*` and `?` only."""
    return not any(re.fullmatch(fnmatch.translate(p), name) for p in patterns)
