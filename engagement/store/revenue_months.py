"""The revenue_month table: each account's revenue state at the month boundaries where it changed.

Boundary b is the first instant of month number b (year * 12 + month - 1). A revenue row belongs to
the first boundary at or after its instant; an account's last row of a boundary is its *state* there,
and holds until its next state's boundary. Each state carries its previous state's MRR and plan,
whether the account paid anything before the previous boundary, and its next state's boundary, MRR and
plan, so the retention report needs no window over the revenue rows: its sums are one pass in
boundary order (reports/retention_queries.py).

Every writer of `revenue` calls `refresh` with the accounts it wrote in the same transaction; the
migration that adds the table fills it with `rebuild`. Both are set-based: two window passes over the
accounts' revenue rows in index order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    case,
    cast,
    delete,
    extract,
    func,
    insert,
    literal_column,
    select,
)

from engagement.store import schema
from engagement.store.database import among

REVENUE_MONTH = schema.table(schema.RevenueMonth)
CHUNK = 1000


def month_number(dialect: str, column: Any, *, ceiling: bool) -> Any:
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


def states(dialect: str, account_ids: list[str] | None = None, conn: Connection | None = None) -> Any:
    """The revenue_month rows of these accounts (None: of every account), as a select in column order."""
    revenue = schema.table(schema.Revenue)
    rows = select(
        revenue.c.account_id,
        revenue.c.effective_at,
        case((revenue.c.mrr > 0, revenue.c.mrr), else_=0.0).label("mrr"),
        revenue.c.plan,
        month_number(dialect, revenue.c.renewal_date, ceiling=False).label("renewal_month"),
        month_number(dialect, revenue.c.effective_at, ceiling=True).label("boundary"),
    )
    if account_ids is not None:
        assert conn is not None
        rows = rows.where(among(conn, revenue.c.account_id, account_ids))
    r = rows.subquery("rows")
    # one frame for both (LEAD ignores it): whether the account has paid by each row rides the same pass
    history: dict[str, Any] = {
        "partition_by": r.c.account_id,
        "order_by": r.c.effective_at,
        "rows": (None, 0),
    }
    ahead = select(
        r,
        func.lead(r.c.boundary).over(**history).label("next_row"),
        func.max(case((r.c.mrr > 0, 1), else_=0)).over(**history).label("paid"),
    ).subquery("ahead")
    a = ahead.c
    kept = select(ahead).where((a.next_row.is_(None)) | (a.next_row != a.boundary)).subquery("kept")
    k = kept.c
    window: dict[str, Any] = {"partition_by": k.account_id, "order_by": k.effective_at}
    return select(
        k.boundary,
        k.account_id,
        k.mrr,
        k.plan,
        k.renewal_month,
        func.coalesce(func.lag(k.mrr).over(**window), 0.0).label("prev_mrr"),
        func.lag(k.plan).over(**window).label("prev_plan"),
        (func.coalesce(func.lag(k.paid).over(**window), 0) == 1).label("paid_before"),
        func.lead(k.boundary).over(**window).label("next_boundary"),
        func.lead(k.mrr).over(**window).label("next_mrr"),
        func.lead(k.plan).over(**window).label("next_plan"),
    )


COLUMNS = [c.name for c in REVENUE_MONTH.columns]


def rebuild(conn: Connection) -> None:
    """Every account's states anew from its revenue rows."""
    conn.execute(delete(REVENUE_MONTH))
    conn.execute(insert(REVENUE_MONTH).from_select(COLUMNS, states(conn.dialect.name)))


def refresh(conn: Connection, account_ids: Iterable[str]) -> None:
    """These accounts' states anew from their revenue rows (after a write of some of them)."""
    ids = sorted(set(account_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        conn.execute(delete(REVENUE_MONTH).where(among(conn, REVENUE_MONTH.c.account_id, chunk)))
        conn.execute(insert(REVENUE_MONTH).from_select(COLUMNS, states(conn.dialect.name, chunk, conn)))
