"""The set-based SQL behind the retention report: one statement, two passes over the revenue rows, one GROUP BY.

A month boundary is a month's first instant (boundary k of a range starts its k-th month; boundary
`count` ends the range). Pass one reads the revenue rows up to the range's end in (account,
effective_at) order and keeps each account's last row at or before each boundary that has any: a row
belongs to the first boundary at or after its instant, and boundary 0 gathers all history before the
range (SQLite: an index seek per row finds no later row before its boundary; PostgreSQL: LEAD). A kept
row is the account's *state* from its boundary until the next state's. Pass two, a window in index
order, puts each state beside the one before it (LAG: the MRR at the previous boundary) and after it
(LEAD: the next boundary, and whether the account pays from there). Whether an account arriving from 0
had paid before is, on SQLite, an index seek for those rows only and, on PostgreSQL, a running flag in
pass one's window (each database's cheaper way, measured in bench/RESULTS.md). Then one GROUP BY over the states yields, per
boundary and group, the change in MRR and in paying accounts (running sums of those over the months,
in Python, give the MRR and paying accounts at every boundary) and the month's movements; and per
month and group the renewals due. Nothing is per account in Python, and the statement does not grow
with the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)

from engagement import vocab
from engagement.reports.months import Months
from engagement.store import schema
from engagement.store.types import UTCDateTime

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


def _month_number(dialect: str, column: Any, *, ceiling: bool) -> Any:
    """year * 12 + month - 1 of a UTC timestamp or date; with `ceiling`, of the first month start at or after it."""
    if dialect == "sqlite":  # timestamps are stored 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), dates 'YYYY-MM-DD'
        year = cast(func.substr(column, 1, 4, type_=String), Integer)
        month = cast(func.substr(column, 6, 2, type_=String), Integer)
        number = year * 12 + month - 1
        if ceiling:
            number = number + case((func.substr(column, 9, type_=String) == "01 00:00:00.000000", 0), else_=1)
        return number
    if ceiling:  # a month start is its own ceiling; any later instant belongs to the next month
        local = func.timezone("UTC", column) - literal_column("interval '1 microsecond'")
        return cast(extract("year", local), Integer) * 12 + cast(extract("month", local), Integer)
    return cast(extract("year", column), Integer) * 12 + cast(extract("month", column), Integer) - 1


def _signup_month(dialect: str, column: Any) -> Any:
    if dialect == "sqlite":
        return func.substr(column, 1, 7, type_=String)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM", type_=String)


def _states(dialect: str, months: Months, by: vocab.RetentionBy | None) -> Any:
    """Every account's state at each boundary where it changed, beside its previous and next state."""
    revenue = schema.table(schema.Revenue)
    boundary = _month_number(dialect, revenue.c.effective_at, ceiling=True) - months.first
    at = func.max if dialect == "sqlite" else func.greatest  # SQLite's two-argument max is a scalar
    rows = (
        select(
            revenue.c.account_id,
            revenue.c.effective_at,
            case((revenue.c.mrr > 0, revenue.c.mrr), else_=0.0).label("mrr"),
            revenue.c.plan,
            revenue.c.renewal_date,
            at(boundary, 0).label("j"),
        )
        .where(revenue.c.effective_at <= literal(months.boundary(months.count), UTCDateTime()))
        .subquery("rows")
    )
    # a row is kept when it is its account's last at or before its boundary. SQLite: no later row up to that
    # instant (an index seek per row costs less than its window functions); PostgreSQL: the next row's
    # boundary differs (a window pass costs less than a seek per row)
    if dialect == "sqlite":
        later = revenue.alias("later")
        kept = (
            select(rows)
            .where(
                ~exists().where(
                    later.c.account_id == rows.c.account_id,
                    later.c.effective_at > rows.c.effective_at,
                    later.c.effective_at <= boundary_instant(dialect, months.first, rows.c.j),
                )
            )
            .subquery("kept")
        )
    else:
        # one frame for both (LEAD ignores it): whether the account has paid by each row rides the same pass
        history: dict[str, Any] = {
            "partition_by": rows.c.account_id,
            "order_by": rows.c.effective_at,
            "rows": (None, 0),
        }
        ahead_rows = select(
            rows,
            func.lead(rows.c.j).over(**history).label("next_row_j"),
            func.max(case((rows.c.mrr > 0, 1), else_=0)).over(**history).label("paid"),
        ).subquery("ahead_rows")
        a = ahead_rows.c
        kept = (
            select(a.account_id, a.effective_at, a.mrr, a.plan, a.renewal_date, a.j, a.paid)
            .where(or_(a.next_row_j.is_(None), a.next_row_j != a.j))
            .subquery("kept")
        )
    account = schema.accounts
    group: Any = literal("", String)
    if by == vocab.RetentionBy.TOUCH:
        group = func.coalesce(account.c.touch, UNKNOWN)
    elif by == vocab.RetentionBy.COHORT:
        group = func.coalesce(_signup_month(dialect, account.c.signed_up_at), UNKNOWN)
    source: Any = kept
    if by in (vocab.RetentionBy.TOUCH, vocab.RetentionBy.COHORT):
        source = kept.outerjoin(account, account.c.id == kept.c.account_id)
    # the kept rows come in index order (account, effective_at): this window needs no sort
    states: dict[str, Any] = {"partition_by": kept.c.account_id, "order_by": kept.c.effective_at}
    plan = func.coalesce(kept.c.plan, NO_PLAN)
    # each window function is a pass over the states, so the next state's numbers travel packed: its
    # boundary + 1, negative when the account pays nothing from there
    ahead = case((kept.c.mrr > 0, kept.c.j + 1), else_=-(kept.c.j + 1))
    plans = by == vocab.RetentionBy.PLAN
    windowed = (
        select(
            kept.c.j,
            kept.c.mrr,
            _month_number(dialect, kept.c.renewal_date, ceiling=False).label("renewal_month"),
            (plan if plans else group).label("g"),
            kept.c.account_id,
            # PostgreSQL: the previous state's MRR, or -1 when the account had never paid by then (MRR 0)
            func.lag(
                case((kept.c.paid == 1, kept.c.mrr), else_=-1.0) if dialect != "sqlite" else kept.c.mrr,
                1,
                -1.0,
            )
            .over(**states)
            .label("back"),
            func.lead(ahead).over(**states).label("ahead"),
            (func.lag(plan).over(**states) if plans else literal(None, String)).label("prev_g"),
            (func.lead(plan).over(**states) if plans else literal(None, String)).label("next_g"),
        )
        .select_from(source)
        .subquery("windowed")
    )
    w = windowed.c
    return select(
        w.account_id,
        w.j,
        w.mrr,
        w.renewal_month,
        w.g,
        case((w.back > 0, w.back), else_=0.0).label("prev_mrr"),
        case((w.back >= 0, 1), else_=0).label("prev_paid"),  # PostgreSQL only: SQLite seeks (_paid_before)
        (func.abs(w.ahead) - 1).label("next_j"),
        case((w.ahead > 0, 1), else_=0).label("next_paying"),
        w.prev_g,
        w.next_g,
    ).subquery("states")


def boundary_instant(dialect: str, first: int, k: Any) -> Any:
    """The first instant of the k-th month after month number `first`, as the database compares timestamps."""
    n = literal_column(str(int(first))) + k
    year = n.self_group().op("/", precedence=8)(literal_column("12"))  # integer division on both databases
    if dialect == "sqlite":
        return func.printf("%04d-%02d-01 00:00:00.000000", year, n % 12 + 1, type_=String)
    return func.make_timestamptz(year, n % 12 + 1, 1, 0, 0, 0.0, "UTC", type_=UTCDateTime())


def _paid_before(dialect: str, months: Months, s: Any) -> Any:
    """1 when the state's account had a row paying something before its month's start, else 0."""
    earlier = schema.table(schema.Revenue).alias("earlier")
    found = exists().where(
        earlier.c.account_id == s.c.account_id,
        earlier.c.effective_at < boundary_instant(dialect, months.first, s.c.j - 1),
        earlier.c.mrr > 0,
    )
    return case((found, 1), else_=0)


def statement(dialect: str, months: Months, by: vocab.RetentionBy | None) -> Select[Any]:
    """The changes at each boundary, each month's movements and its renewals due, per group."""
    s = _states(dialect, months, by)
    # a plan change moves an account between groups: its old state leaves the old plan (side 2) as its new
    # state joins the new one (side 1), and a renewal counts in the plan as of a (side 3); without a plan
    # split all of a state's numbers land in one group, so one row carries them (no join)
    two_sides = by == vocab.RetentionBy.PLAN
    renewal = s.c.renewal_month - months.first
    at_b_is_next = and_(s.c.next_j.is_not(None), s.c.next_j == renewal + 1)
    due = and_(
        s.c.renewal_month.is_not(None),
        renewal >= 0,
        renewal < months.count,
        s.c.j <= renewal,
        or_(s.c.next_j.is_(None), s.c.next_j > renewal),
    )
    side: Any = literal_column("1")
    group: Any = s.c.g
    boundary: Any = s.c.j
    due_month: Any = case((due, renewal), else_=-1)
    source: Any = s
    wanted: list[Any] = []
    if two_sides:
        sides = union_all(*(select(literal(n).label("side")) for n in (1, 2, 3))).subquery("sides")
        side = sides.c.side
        due_group = case((s.c.mrr > 0, s.c.g), else_=case((at_b_is_next, s.c.next_g), else_=s.c.g))
        group = case((side == 1, s.c.g), (side == 2, s.c.prev_g), else_=due_group)
        boundary = case((side == 3, -1), else_=s.c.j)
        due_month = case((side == 3, renewal), else_=-1)
        source = s.join(sides, literal(True))
        wanted = [or_(side == 1, and_(side == 3, due), and_(side == 2, s.c.prev_mrr > 0))]
    each = (
        select(
            boundary.label("j"),
            due_month.label("due_month"),
            group.label("g"),
            side.label("side"),
            s.c.prev_mrr.label("start"),
            s.c.mrr.label("end"),
            case(
                (
                    and_(side == 1, s.c.j >= 1, s.c.prev_mrr == 0, s.c.mrr > 0),
                    _paid_before(dialect, months, s) if dialect == "sqlite" else s.c.prev_paid,
                ),
                else_=0,
            ).label("prev_paid"),
            case((at_b_is_next, s.c.next_paying), else_=case((s.c.mrr > 0, 1), else_=0)).label("paying_at_b"),
        )
        .select_from(source)
        .where(*wanted)
        .subquery("each")
    )
    e = each.c
    old_side = 2 if two_sides else 1
    start, end = e.start, e.end
    moved = e.j >= 1
    arrived = and_(e.side == 1, moved, start == 0, end > 0)
    stayed = and_(e.side == old_side, moved, start > 0)

    def total(condition: Any, value: Any) -> Any:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return select(
        e.j,
        e.due_month,
        e.g,
        (total(e.side == 1, end) - total(e.side == old_side, start)).label("mrr_change"),
        (count(and_(e.side == 1, end > 0)) - count(and_(e.side == old_side, start > 0))).label(
            "paying_change"
        ),
        total(and_(arrived, e.prev_paid == 0), end).label("new"),
        count(and_(arrived, e.prev_paid == 0)).label("new_accounts"),
        total(and_(arrived, e.prev_paid == 1), end).label("reactivation"),
        count(and_(arrived, e.prev_paid == 1)).label("reactivated_accounts"),
        total(and_(stayed, end > start), end - start).label("expansion"),
        total(and_(stayed, end > 0, end < start), start - end).label("contraction"),
        total(and_(stayed, end == 0), start).label("churned"),
        count(and_(stayed, end == 0)).label("churned_accounts"),
        count(e.due_month >= 0).label("due"),
        count(and_(e.due_month >= 0, e.paying_at_b == 1)).label("renewed"),
    ).group_by(e.j, e.due_month, e.g)


def rows(conn: Connection, months: Months, by: vocab.RetentionBy | None) -> list[Row]:
    """The result of `statement`, typed."""
    if conn.dialect.name == "postgresql":  # compiling this one statement costs more than it saves (~1.7 s)
        conn.exec_driver_sql("SET LOCAL jit = off")
    return [
        Row(
            int(r.j),
            int(r.due_month),
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
            int(r.due),
            int(r.renewed),
        )
        for r in conn.execute(statement(conn.dialect.name, months, by))
    ]
