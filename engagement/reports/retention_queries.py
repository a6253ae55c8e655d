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
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.elements import True_

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
    """The source of the states and their group when split by touch tier or signup month ('' else)."""
    account = schema.accounts
    if by == vocab.RetentionBy.TOUCH:
        group: Any = func.coalesce(account.c.touch, UNKNOWN)
    elif by == vocab.RetentionBy.COHORT:
        group = func.coalesce(_signup_month(dialect, account.c.signed_up_at), UNKNOWN)
    else:
        return s, literal("", String)
    return s.outerjoin(account, account.c.id == s.c.account_id), group


def changes(dialect: str, months: Months, by: vocab.RetentionBy | None) -> Select[Any]:
    """Per boundary (month number, up to the range's end) and group: the change in MRR and paying accounts and,
    inside the range, the movements."""
    s = REVENUE_MONTH
    last = months.first + months.count
    if by == vocab.RetentionBy.PLAN:
        # a plan change moves an account between groups: its new state joins the new plan (side 1) as its old
        # state leaves the old one (side 2, only where it paid something)
        sides = union_all(*(select(literal(n).label("side")) for n in (1, 2))).subquery("sides")
        side: Any = sides.c.side
        group: Any = case(
            (side == 1, func.coalesce(s.c.plan, NO_PLAN)), else_=func.coalesce(s.c.prev_plan, NO_PLAN)
        )
        source: Any = s.join(sides, literal(True))
        wanted: list[Any] = [or_(side == 1, s.c.prev_mrr > 0)]
        old_side: Any = 2
    else:
        source, group = _grouped(dialect, by, s)
        side, wanted, old_side = None, [], None
    # unsplit by plan, each state is one side: its conditions drop out (and_ with true() is the other operand)
    new_side, old_side_is = (true(), true()) if side is None else (side == 1, side == old_side)
    start, end = s.c.prev_mrr, s.c.mrr
    moved = s.c.boundary > months.first
    arrived = and_(new_side, moved, start == 0, end > 0)
    stayed = and_(old_side_is, moved, start > 0)
    new = and_(arrived, ~s.c.paid_before)
    returned = and_(arrived, s.c.paid_before)
    return (
        select(
            s.c.boundary.label("b"),
            group.label("g"),
            (_total(new_side, end) - _total(old_side_is, start)).label("mrr_change"),
            (_count(and_(new_side, end > 0)) - _count(and_(old_side_is, start > 0))).label("paying_change"),
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
        .where(s.c.boundary <= last, *wanted)
        .group_by(s.c.boundary, group)
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
            group.label("g"),
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
        .group_by(due_month, group)
    )


def _total(condition: Any, value: Any) -> Any:
    if isinstance(condition, True_):
        return func.coalesce(func.sum(value), 0)
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def _count(condition: Any) -> Any:
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
