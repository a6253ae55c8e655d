"""The set-based SQL behind the retention report: two GROUP BYs over the revenue_month states, no window.

A month boundary is a month's first instant (boundary k of a range starts its k-th month; boundary
`count` ends the range). revenue_month (store/revenue_months.py) holds each account's state at every
boundary where it changed, beside its previous and next state, kept by the writers of revenue. The
first statement sums, per boundary and group, each state's change against its previous state (the
changes before the range telescope into boundary 0: their sum is each account's MRR there) and, from
boundary 1 on, the movements. The second counts, per month and group, the renewals due: the states in
force at their renewal month's start, and whether the account pays at its end. On SQLite the table is
in boundary order, so the first statement reads it in order and sorts nothing when it is not split.
Nothing is per account in Python, and neither statement grows with the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    String,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.elements import False_, True_

from engagement import vocab
from engagement.reports.months import Months
from engagement.store import schema
from engagement.store.revenue_months import REVENUE_MONTH

NO_PLAN = "(none)"
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class Row:
    """One group's changes at boundary j (-1: none) and its renewals due in month due_month (-1: none)."""

    j: int
    due_month: int
    group: str
    mrr_change: float
    paying_change: int
    new: float
    new_accounts: int
    reactivation: float
    reactivated_accounts: int
    expansion: float
    contraction: float
    churned: float
    churned_accounts: int
    due: int
    renewed: int


def _signup_month(dialect: str, column: Any) -> Any:
    if dialect == "sqlite":
        return func.substr(column, 1, 7, type_=String)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM", type_=String)


def _grouped(dialect: str, by: vocab.RetentionBy | None, s: Any) -> tuple[Any, Any]:
    """The source of the states and their group when split by touch tier or signup month (None else)."""
    account = schema.accounts
    if by == vocab.RetentionBy.TOUCH:
        group: Any = func.coalesce(account.c.touch, UNKNOWN)
    elif by == vocab.RetentionBy.COHORT:
        group = func.coalesce(_signup_month(dialect, account.c.signed_up_at), UNKNOWN)
    else:
        return s, None
    return s.outerjoin(account, account.c.id == s.c.account_id), group


def changes(dialect: str, months: Months, by: vocab.RetentionBy | None) -> Any:
    """Per boundary (month number, up to the range's end) and group: the change in MRR and paying accounts and,
    inside the range, the movements."""
    s = REVENUE_MONTH
    if by != vocab.RetentionBy.PLAN:
        source, group = _grouped(dialect, by, s)
        return _sums(months, source, group, true(), true())
    # a plan change moves an account between groups: its new state joins the new plan as its old state leaves
    # the old one (where it paid something); a state that keeps its plan does both in one group
    plan, old_plan = func.coalesce(s.c.plan, NO_PLAN), func.coalesce(s.c.prev_plan, NO_PLAN)
    return union_all(
        _sums(months, s, plan, true(), old_plan == plan),
        _sums(months, s, old_plan, false(), true(), s.c.prev_mrr > 0, old_plan != plan),
    )


def _sums(months: Months, source: Any, group: Any, joins: Any, leaves: Any, *wanted: Any) -> Select[Any]:
    """`changes` for the states of `source`: a state's own MRR counts where `joins` holds, its previous
    state's where `leaves` does."""
    s = REVENUE_MONTH
    start, end = s.c.prev_mrr, s.c.mrr
    moved = s.c.boundary > months.first
    arrived = and_(joins, moved, start == 0, end > 0)
    stayed = and_(leaves, moved, start > 0)
    new = and_(arrived, ~s.c.paid_before)
    returned = and_(arrived, s.c.paid_before)
    return (
        select(
            s.c.boundary.label("b"),
            _label(group),
            (_total(joins, end) - _total(leaves, start)).label("mrr_change"),
            (_count(and_(joins, end > 0)) - _count(and_(leaves, start > 0))).label("paying_change"),
            _total(new, end).label("new"),
            _count(new).label("new_accounts"),
            _total(returned, end).label("reactivation"),
            _count(returned).label("reactivated_accounts"),
            _total(and_(stayed, end > start), end - start).label("expansion"),
            _total(and_(stayed, end > 0, end < start), start - end).label("contraction"),
            _total(and_(stayed, end == 0), start).label("churned"),
            _count(and_(stayed, end == 0)).label("churned_accounts"),
        )
        .select_from(source)
        .where(s.c.boundary <= months.first + months.count, *wanted)
        .group_by(s.c.boundary, *_keys(group))
    )


def renewals(dialect: str, months: Months, by: vocab.RetentionBy | None) -> Select[Any]:
    """Per month (number) of the range and group: the renewals due in it and those renewed.

    A renewal is due in its month when the state in force at the month's start carries it; it is renewed
    when the account pays at the month's end (the next state's MRR when that state starts there)."""
    s = REVENUE_MONTH
    due_month = s.c.renewal_month
    at_end_is_next = s.c.next_boundary == due_month + 1
    paying_at_end = case((at_end_is_next, s.c.next_mrr > 0), else_=s.c.mrr > 0)
    if (
        by == vocab.RetentionBy.PLAN
    ):  # the plan at the month's end: the next state's when it pays and this one not
        source: Any = s
        group: Any = func.coalesce(
            case((and_(s.c.mrr <= 0, at_end_is_next), s.c.next_plan), else_=s.c.plan), NO_PLAN
        )
    else:
        source, group = _grouped(dialect, by, s)
    return (
        select(
            due_month.label("due_month"),
            _label(group),
            func.count().label("due"),
            _count(paying_at_end).label("renewed"),
        )
        .select_from(source)
        .where(
            due_month >= months.first,
            due_month < months.first + months.count,
            s.c.boundary <= due_month,
            or_(s.c.next_boundary.is_(None), s.c.next_boundary > due_month),
        )
        .group_by(due_month, *_keys(group))
    )


def _label(group: Any) -> Any:
    return (literal("", String) if group is None else group).label("g")


def _keys(group: Any) -> list[Any]:
    """The group as a GROUP BY key; unsplit none, so SQLite's sums follow the table's order and sort nothing."""
    return [] if group is None else [group]


def _total(condition: Any, value: Any) -> Any:
    # a condition that is always true or false (and_ with true() is its other operand) costs nothing per row
    if isinstance(condition, True_):
        return func.coalesce(func.sum(value), 0)
    if isinstance(condition, False_):
        return literal(0)
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _count(condition: Any) -> Any:
    if isinstance(condition, False_):
        return literal(0)
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def rows(conn: Connection, months: Months, by: vocab.RetentionBy | None) -> list[Row]:
    """The results of `changes` and `renewals`, typed: boundaries before the range count at boundary 0."""
    dialect = conn.dialect.name
    if dialect == "postgresql":  # compiling these statements costs more than it saves
        conn.exec_driver_sql("SET LOCAL jit = off")
    found = [
        Row(
            max(int(r.b) - months.first, 0),
            -1,
            str(r.g),
            float(r.mrr_change),
            int(r.paying_change),
            float(r.new),
            int(r.new_accounts),
            float(r.reactivation),
            int(r.reactivated_accounts),
            float(r.expansion),
            float(r.contraction),
            float(r.churned),
            int(r.churned_accounts),
            0,
            0,
        )
        for r in conn.execute(changes(dialect, months, by))
    ]
    due = [
        Row(
            -1,
            int(r.due_month) - months.first,
            str(r.g),
            0.0,
            0,
            0.0,
            0,
            0.0,
            0,
            0.0,
            0.0,
            0.0,
            0,
            int(r.due),
            int(r.renewed),
        )
        for r in conn.execute(renewals(dialect, months, by))
    ]
    return found + due
