"""Compile a condition to one SQL boolean over the whole customer base (set-based)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql import ColumnElement, FromClause
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from engagement.conditions import ast
from engagement.conditions.context import EvalContext
from engagement.store import functions, planner, schema

INSTANT = re.compile(r"(\w+?)_([tdn])_(m?)(\d+)")  # see `instant`
JSON_KINDS = {  # our kind -> (sqlite json_type values, postgres jsonb_typeof values)
    "string": (("text",), ("string",)),
    "number": (("integer", "real"), ("number",)),
    "bool": (("true", "false"), ("boolean",)),
}


class _TraitValue(FunctionElement[Any]):
    """A trait's value if its JSON type is `kind`, else NULL (never a cast error)."""

    inherit_cache = True
    name = "trait_value"
    # path and kind are rendered into the SQL text, so they must be part of the cache key
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own convention)
        *FunctionElement._traverse_internals,
        ("path", InternalTraversal.dp_plain_obj),
        ("kind", InternalTraversal.dp_string),
    ]

    def __init__(self, column: Any, path: tuple[str, ...], kind: str) -> None:
        self.path = path
        self.kind = kind
        super().__init__(column)


class _TraitPresent(FunctionElement[Any]):
    """True when the trait exists and is not JSON null."""

    inherit_cache = True
    name = "trait_present"
    type = Boolean()
    _traverse_internals = [  # noqa: RUF012
        *FunctionElement._traverse_internals,
        ("path", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, column: Any, path: tuple[str, ...]) -> None:
        self.path = path
        super().__init__(column)


class _Position(FunctionElement[int]):
    """1-based position of a substring (0 when absent): instr / strpos."""

    inherit_cache = True
    name = "position"
    type = Integer()


functions.render(
    _Position,
    sqlite=lambda _, args: f"instr({functions.joined(args)})",
    postgresql=lambda _, args: f"strpos({functions.joined(args)})",
)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _sqlite_path(path: tuple[str, ...]) -> str:
    return "$" + "".join('."' + _quote(p).replace('"', '\\"') + '"' for p in path)


def _pg_path(column: str, path: tuple[str, ...], *, last_as_text: bool = False) -> str:
    # `-> 'key'::text` only looks up object keys; `#> '{a,0}'` would also index arrays
    arrows = ["->"] * (len(path) - 1) + ["->>" if last_as_text else "->"]
    steps = "".join(f" {arrow} '{_quote(key)}'::text" for arrow, key in zip(arrows, path, strict=True))
    return f"({column}{steps})"


def _trait_value_sqlite(element: _TraitValue, args: list[str]) -> str:
    col = args[0]
    path = _sqlite_path(element.path)
    kinds = ", ".join(f"'{k}'" for k in JSON_KINDS[element.kind][0])
    return f"(CASE WHEN json_type({col}, '{path}') IN ({kinds}) THEN json_extract({col}, '{path}') END)"


def _trait_value_pg(element: _TraitValue, args: list[str]) -> str:
    col = args[0]
    kind = JSON_KINDS[element.kind][1][0]
    cast = {"string": "", "number": "::double precision", "bool": "::boolean"}[element.kind]
    value = _pg_path(col, element.path, last_as_text=True)
    return f"(CASE WHEN jsonb_typeof({_pg_path(col, element.path)}) = '{kind}' THEN {value}{cast} END)"


def _trait_present_sqlite(element: _TraitPresent, args: list[str]) -> str:
    return f"(coalesce(json_type({args[0]}, '{_sqlite_path(element.path)}'), 'null') != 'null')"


def _trait_present_pg(element: _TraitPresent, args: list[str]) -> str:
    return f"(coalesce(jsonb_typeof({_pg_path(args[0], element.path)}), 'null') != 'null')"


functions.render(_TraitValue, sqlite=_trait_value_sqlite, postgresql=_trait_value_pg)
functions.render(_TraitPresent, sqlite=_trait_present_sqlite, postgresql=_trait_present_pg)


@functools.cache  # the same join for every statement (SQLAlchemy elements are immutable)
def subjects_from(audience: str) -> tuple[FromClause, ColumnElement[Any]]:
    """The FROM clause conditions are written against, and the subject id column."""
    if audience == "account":
        return schema.accounts, schema.accounts.c.id
    joined = schema.contacts.join(schema.accounts, schema.contacts.c.account_id == schema.accounts.c.id)
    return joined, schema.contacts.c.id


def instant(ctx: EvalContext, offset: timedelta, type_: Any) -> BindParameter[Any]:
    """`ctx.now + offset` as a parameter named after the offset (`now_t_m86400000000`: a day before), so a statement built
    at one tick serves the next with its parameters recomputed (`instants`). OverflowError beyond the calendar."""
    return bindparam(
        f"{ctx.name}_t_{_signed(offset // timedelta(microseconds=1))}", ctx.now + offset, type_=type_
    )


def day(ctx: EvalContext, days: int, type_: Any) -> BindParameter[Any]:
    """`ctx.today` plus `days` as a parameter named after them (`now_d_m7`); OverflowError beyond the calendar."""
    return bindparam(f"{ctx.name}_d_{_signed(days)}", ctx.today + timedelta(days=days), type_=type_)


def _signed(number: int) -> str:
    return f"m{-number}" if number < 0 else str(number)  # a name of letters, digits and _ on every driver


def now_day(ctx: EvalContext) -> BindParameter[Any]:
    """`ctx.now_day` (fractional days since the epoch) as a parameter (`now_n_0`)."""
    return bindparam(f"{ctx.name}_n_0", ctx.now_day, type_=Float)


def instant_keys(stmt: Any) -> tuple[str, ...]:
    """The names of the parameters `instant`, `day` and `now_day` put into a statement."""
    keys = (b.key for b in stmt._generate_cache_key().bindparams)
    return tuple(sorted({k for k in keys if INSTANT.fullmatch(k)}))


def instants(keys: Iterable[str], contexts: Mapping[str, EvalContext]) -> dict[str, Any]:
    """The values of those parameters at the instants of `contexts` (by name); OverflowError beyond the
    calendar (then the statement must be built for that instant: it reads differently there)."""
    values: dict[str, Any] = {}
    for key in keys:
        match = INSTANT.fullmatch(key)
        assert match is not None
        ctx, kind, number = contexts[match[1]], match[2], -int(match[4]) if match[3] else int(match[4])
        if kind == "t":
            values[key] = ctx.now + timedelta(microseconds=number)
        elif kind == "d":
            values[key] = ctx.today + timedelta(days=number)
        else:
            values[key] = ctx.now_day
    return values


def window_start(ctx: EvalContext, within: timedelta, type_: Any) -> BindParameter[Any] | None:
    """`now - within` as a parameter, or None when that is before year 1 (the window covers all time)."""
    try:
        return instant(ctx, -within, type_)
    except OverflowError:
        ctx.unreusable.append(f"within {within}")
        return None


def compile_condition(cond: ast.Condition, ctx: EvalContext) -> ColumnElement[bool]:
    """A two-valued SQL boolean (never NULL) equivalent to `evaluate(cond, ...)`."""
    if isinstance(cond, ast.All):
        return and_(true(), *(compile_condition(c, ctx) for c in cond.items))
    if isinstance(cond, ast.AnyOf):
        return or_(false(), *(compile_condition(c, ctx) for c in cond.items))
    if isinstance(cond, ast.Not):
        return not_(compile_condition(cond.item, ctx))
    if isinstance(cond, ast.Attr):
        return _attr(cond)
    if isinstance(cond, ast.Milestone):
        return _milestone(cond, ctx)
    if isinstance(cond, ast.EventCount):
        return _bounds(_event_count(cond, ctx), cond.bounds)
    if isinstance(cond, ast.Days):
        return _days(cond, ctx)
    if isinstance(cond, ast.Score):
        return _bounds(score_expr(cond.scope, ctx), cond.bounds)
    if isinstance(cond, ast.Health):
        return _scorecard_band(cond, ctx) if ctx.scorecards else _health(cond, ctx)
    if isinstance(cond, ast.HealthScore):
        score = _health_score(ctx)
        return and_(score.is_not(None), _bounds(score, cond.bounds))
    if isinstance(cond, ast.HealthChange):
        return _health_change(cond, ctx)
    if isinstance(cond, ast.Survey):
        return _survey(cond, ctx)
    raise TypeError(f"unknown condition node {cond!r}")


def _column(scope: str, name: str) -> ColumnElement[Any]:
    table = schema.contacts if scope == "contact" else schema.accounts
    return table.c[name]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _value(cond: ast.Attr, kind: str) -> ColumnElement[Any]:
    if cond.is_trait:
        return _TraitValue(_column(cond.scope, "traits"), cond.path[1:], kind)
    return _column(cond.scope, cond.path[0])


def _eq(cond: ast.Attr, value: Any) -> ColumnElement[bool]:
    col = _value(cond, _kind(value))
    return and_(col.is_not(None), col == value)


def _attr(cond: ast.Attr) -> ColumnElement[bool]:
    op, value = cond.op, cond.value
    if op == "exists":
        if cond.is_trait:
            present: ColumnElement[bool] = _TraitPresent(_column(cond.scope, "traits"), cond.path[1:])
        else:
            present = _column(cond.scope, cond.path[0]).is_not(None)
        return present if value else not_(present)
    if op == "eq":
        return _eq(cond, value)
    if op == "ne":
        return not_(_eq(cond, value))
    if op in ("in", "not_in"):
        anyof = or_(false(), *(_eq(cond, v) for v in value))
        return anyof if op == "in" else not_(anyof)
    if op == "contains":
        col = _value(cond, "string")
        return and_(col.is_not(None), _Position(col, literal(value)) > 0)
    col = _value(cond, _kind(value))
    compare = {"lt": col < value, "lte": col <= value, "gt": col > value, "gte": col >= value}[op]
    return and_(col.is_not(None), compare)


def _subject_ids(ctx: EvalContext) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(contact id or NULL, account id) of the subject row."""
    if ctx.audience == "account":
        return literal(None), schema.accounts.c.id
    return schema.contacts.c.id, schema.contacts.c.account_id


def _milestone(cond: ast.Milestone, ctx: EvalContext) -> ColumnElement[bool]:
    if ctx.audience == "account":
        m = schema.account_milestones
        match = m.c.account_id == schema.accounts.c.id
    else:
        m = schema.milestones
        match = m.c.contact_id == schema.contacts.c.id
    where = [match, m.c.name == cond.name, m.c.reached_at <= instant(ctx, timedelta(0), m.c.reached_at.type)]
    start = None if cond.within is None else window_start(ctx, cond.within, m.c.reached_at.type)
    if start is not None:
        where.append(m.c.reached_at > start)
    return exists(select(literal(1)).select_from(m).where(*where))


def _event_count(cond: ast.EventCount, ctx: EvalContext) -> ColumnElement[Any]:
    e = schema.events
    if ctx.audience == "account":
        match = e.c.account_id == schema.accounts.c.id
    else:
        match = e.c.contact_id == schema.contacts.c.id
    where = [match, e.c.name == cond.event, e.c.timestamp <= instant(ctx, timedelta(0), e.c.timestamp.type)]
    start = None if cond.within is None else window_start(ctx, cond.within, e.c.timestamp.type)
    if start is not None:
        where.append(e.c.timestamp > start)
    return select(func.count()).select_from(e).where(*where).scalar_subquery()


def score_expr(scope: str, ctx: EvalContext) -> ColumnElement[Any]:
    """The subject's decayed score (0 without a score row)."""
    if scope == "account":
        s = schema.account_scores
        owner = schema.accounts.c.id if ctx.audience == "account" else schema.contacts.c.account_id
        match = s.c.account_id == owner
    else:
        s = schema.contact_scores
        match = s.c.contact_id == schema.contacts.c.id
    factor = func.power(literal(0.5, Float), (now_day(ctx) - s.c.as_of_day) / ctx.half_life_days)
    value = select(s.c.value * factor).where(match).scalar_subquery()
    return func.coalesce(value, literal(0.0, Float))


def latest_survey_score(kind: str, within: timedelta | None, ctx: EvalContext) -> ColumnElement[Any]:
    """The contact's latest answer's score of this kind answered by `now` (and within the window), or NULL."""
    a = schema.survey_answers
    at = a.c.answered_at
    where = [
        a.c.contact_id == schema.contacts.c.id,
        a.c.kind == kind,
        at <= instant(ctx, timedelta(0), at.type),
    ]
    start = None if within is None else window_start(ctx, within, at.type)
    if start is not None:
        where.append(a.c.answered_at > start)
    latest = select(a.c.score).where(*where).order_by(a.c.answered_at.desc(), a.c.delivery_id.desc()).limit(1)
    return latest.scalar_subquery()


def _survey(cond: ast.Survey, ctx: EvalContext) -> ColumnElement[bool]:
    score = latest_survey_score(cond.kind, cond.within, ctx)
    return and_(score.is_not(None), _bounds(score, cond.bounds))


def _health(cond: ast.Health, ctx: EvalContext) -> ColumnElement[bool]:
    # the same first-match order as EvalContext.band, so bands never overlap (even if yellow > green)
    return case_band(score_expr(cond.scope, ctx), ctx) == cond.band


def _owner_account(ctx: EvalContext) -> ColumnElement[Any]:
    return schema.accounts.c.id if ctx.audience == "account" else schema.contacts.c.account_id


def _scorecard_band(cond: ast.Health, ctx: EvalContext) -> ColumnElement[bool]:
    """The band the last health refresh stored for the subject's account (a contact: its account's)."""
    h = schema.health_scores
    return exists(
        select(literal(1)).select_from(h).where(h.c.account_id == _owner_account(ctx), h.c.band == cond.band)
    )


def _health_score(ctx: EvalContext) -> ColumnElement[Any]:
    h = schema.health_scores
    return select(h.c.score).where(h.c.account_id == _owner_account(ctx)).scalar_subquery()


def _health_change(cond: ast.HealthChange, ctx: EvalContext) -> ColumnElement[bool]:
    """The stored score now minus the daily snapshot of the day `within` before today (both must exist)."""
    s = schema.health_snapshots
    try:
        then_day = day(ctx, -cond.within.days, s.c.day.type)
    except OverflowError:
        ctx.unreusable.append(f"within {cond.within}")
        return false()
    then = (
        select(s.c.score).where(s.c.account_id == _owner_account(ctx), s.c.day == then_day).scalar_subquery()
    )
    now_score = _health_score(ctx)
    return and_(now_score.is_not(None), then.is_not(None), _bounds(now_score - then, cond.bounds))


def _bounds(value: ColumnElement[Any], bounds: tuple[ast.Bound, ...]) -> ColumnElement[bool]:
    checks = []
    for op, number in bounds:
        checks.append(
            {
                "eq": value == number,
                "ne": value != number,
                "lt": value < number,
                "lte": value <= number,
                "gt": value > number,
                "gte": value >= number,
            }[op]
        )
    return and_(true(), *checks)


def _days(cond: ast.Days, ctx: EvalContext) -> ColumnElement[bool]:
    """Whole days since/until, as range tests on the column's value, not answered from an index (see
    planner.Unindexed)."""
    scope, _, name = cond.field.partition(".")
    col: ColumnElement[Any] = planner.Unindexed(_column(scope, name))
    is_date = ast.TIME_FIELDS[cond.field] == "date"
    checks: list[ColumnElement[bool]] = [col.is_not(None)]
    for op, number in cond.bounds:
        n = int(number)
        checks.append(_day_range(col, ctx, is_date, op, n, cond.direction))
    return and_(*checks)


def _day_range(
    col: ColumnElement[Any], ctx: EvalContext, is_date: bool, op: str, n: int, direction: str
) -> ColumnElement[bool]:
    """Range tests on whole days from the origin (`today` for a date field, else `now`)."""

    def ge(k: int) -> ColumnElement[bool]:
        """Whole days (since: floor((origin - col)/day), until: floor((col - origin)/day)) >= k."""
        days = -k if direction == "since" else k
        try:
            edge = day(ctx, days, col.type) if is_date else instant(ctx, timedelta(days=days), col.type)
        except OverflowError:  # beyond year 1 or 9999: no stored value is that many days away
            ctx.unreusable.append(f"{days} days")
            return false() if k > 0 else true()
        return col <= edge if direction == "since" else col >= edge

    def lt(k: int) -> ColumnElement[bool]:
        return not_(ge(k))  # col is not NULL here, so NOT is exact

    if op == "gte":
        return ge(n)
    if op == "gt":
        return ge(n + 1)
    if op == "lt":
        return lt(n)
    if op == "lte":
        return lt(n + 1)
    if op == "eq":
        return and_(ge(n), lt(n + 1))
    return or_(lt(n), ge(n + 1))


def case_band(score: ColumnElement[Any], ctx: EvalContext) -> ColumnElement[str]:
    """The health band of a score expression, in SQL."""
    return case((score >= ctx.green, "green"), (score >= ctx.yellow, "yellow"), else_="red")


def trait_number(column: Any, path: tuple[str, ...]) -> ColumnElement[Any]:
    """A JSON trait's value if it is a number, else NULL."""
    return _TraitValue(column, path, "number")
