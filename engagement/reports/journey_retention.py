"""Journeys judged on retention: per group, the accounts still paying and the MRR kept a window after entry.

One entry per account and journey: the account's first enrollment in the range (the earliest; of several
at that instant, the first written), in that enrollment's group. A contact journey's entries are thereby
its accounts' first contacts to enter; with `holdout: {share, by: account}` every contact of an account is
in the same group anyway. An enrollment without an account pays nothing and is left out.

An account's MRR at instant t is the `mrr` of its latest revenue row with `effective_at` ≤ t (none: 0).
Entries younger than the window are pending; the others are judged on the accounts that paid at entry:
still paying = MRR at entry + window > 0, net MRR retained = Σ MRR then ÷ Σ MRR at entry. All of it is one
set-based statement per report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Interval,
    String,
    and_,
    case,
    func,
    literal,
    select,
    type_coerce,
)

from engagement.reports import stats
from engagement.reports.model import Retention, RetentionGroup
from engagement.reports.period import Period
from engagement.store import schema
from engagement.store.types import UTCDateTime

revenue = schema.table(schema.Revenue)
en = schema.enrollments
GROUPS = ("treatment", "holdout")


def later(dialect: str, column: Any, window: timedelta) -> ColumnElement[datetime]:
    """`column + window` as the column's own type (whole seconds of the window)."""
    seconds = int(window.total_seconds())
    if (
        dialect == "sqlite"
    ):  # the text SQLAlchemy stores, 'YYYY-MM-DD HH:MM:SS.ffffff': shift, keep the fraction
        shifted = func.datetime(column, f"+{seconds} seconds", type_=String).concat(
            func.substr(column, 20, 7)
        )
        return type_coerce(shifted, UTCDateTime())
    return type_coerce(column + literal(timedelta(seconds=seconds), Interval()), UTCDateTime())


def mrr_at(account: Any, instant: Any) -> ColumnElement[float]:
    """The account's MRR at `instant`: its latest revenue row's mrr at or before it, else 0."""
    latest = (
        select(revenue.c.mrr)
        .where(revenue.c.account_id == account, revenue.c.effective_at <= instant)
        .order_by(revenue.c.effective_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, literal(0.0, Float()))


def entries(conn: Connection, period: Period, journeys: Sequence[str] | None, window: timedelta) -> Any:
    """Each account's first entry per journey in the period: journey, holdout, account, entry and entry + window."""
    scope = [en.c.account_id.is_not(None), en.c.entered_at >= period.start, en.c.entered_at < period.end]
    if journeys is not None:
        scope.append(en.c.journey_id.in_(journeys))
    ranked = (
        select(
            en.c.journey_id,
            en.c.holdout,
            en.c.account_id,
            en.c.entered_at,
            func.row_number()
            .over(partition_by=(en.c.journey_id, en.c.account_id), order_by=(en.c.entered_at, en.c.id))
            .label("nth"),
        )
        .where(*scope)
        .subquery("ranked_entry")
    )
    return (
        select(
            ranked.c.journey_id,
            ranked.c.holdout,
            ranked.c.account_id,
            ranked.c.entered_at,
            later(conn.dialect.name, ranked.c.entered_at, window).label("after"),
        )
        .where(ranked.c.nth == 1)
        .subquery("account_entry")
    )


def statement(
    conn: Connection, period: Period, journeys: Sequence[str] | None, window: timedelta, now: datetime
) -> Any:
    """The one SELECT: per (journey, holdout) the entries, the pending ones and the judged accounts' sums."""
    e = entries(conn, period, journeys, window)
    found = select(
        e.c.journey_id,
        e.c.holdout,
        e.c.after,
        mrr_at(e.c.account_id, e.c.entered_at).label("x"),
        mrr_at(e.c.account_id, e.c.after).label("y"),
    )
    # materialized: else SQLite inlines the two lookups into every sum that reads x or y (18 of them)
    values = found.cte("account_mrr").prefix_with("MATERIALIZED")
    at = literal(now, UTCDateTime())
    judged = and_(values.c.after <= at, values.c.x > 0)

    def total(value: Any) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((judged, value), else_=None)), 0)

    return select(
        values.c.journey_id,
        values.c.holdout,
        func.count().label("accounts"),
        func.coalesce(func.sum(case((values.c.after > at, 1), else_=0)), 0).label("pending"),
        total(1).label("paying"),
        total(case((values.c.y > 0, 1), else_=0)).label("still"),
        total(values.c.x).label("x"),
        total(values.c.y).label("y"),
        total(values.c.x * values.c.x).label("xx"),
        total(values.c.y * values.c.y).label("yy"),
        total(values.c.x * values.c.y).label("xy"),
    ).group_by(values.c.journey_id, values.c.holdout)


def _sums(
    conn: Connection, period: Period, journeys: Sequence[str] | None, window: timedelta, now: datetime
) -> tuple[dict[tuple[str, bool], RetentionGroup], dict[tuple[str, bool], stats.Sums]]:
    groups: dict[tuple[str, bool], RetentionGroup] = {}
    sums: dict[tuple[str, bool], stats.Sums] = {}
    for row in conn.execute(statement(conn, period, journeys, window, now)):
        key = (row.journey_id, bool(row.holdout))
        groups[key] = RetentionGroup(
            group=GROUPS[key[1]],
            accounts=int(row.accounts),
            pending=int(row.pending),
            paying_at_entry=int(row.paying),
            still_paying=int(row.still),
            mrr_at_entry=float(row.x),
            mrr_after=float(row.y),
        )
        sums[key] = stats.Sums(
            int(row.paying), float(row.x), float(row.y), float(row.xx), float(row.yy), float(row.xy)
        )
    return groups, sums


def retention(
    conn: Connection,
    period: Period,
    journeys: Sequence[str],
    window: timedelta,
    now: datetime,
    min_sample: int,
) -> dict[str, Retention]:
    """Each journey's retention evidence over the accounts that entered it in `period`."""
    groups, sums = _sums(conn, period, journeys, window, now)
    return {j: judge(j, groups, sums, window, min_sample) for j in journeys}


def judge(
    journey_id: str,
    groups: dict[tuple[str, bool], RetentionGroup],
    sums: dict[tuple[str, bool], stats.Sums],
    window: timedelta,
    min_sample: int,
) -> Retention:
    """Treatment vs holdout of one journey: the lifts, their 95% intervals and the verdict."""
    treated, held = (
        groups.get((journey_id, h)) or RetentionGroup(GROUPS[h], 0, 0, 0, 0, 0.0, 0.0) for h in (False, True)
    )
    kept = None
    if treated.paying_at_entry and held.paying_at_entry:
        kept = stats.newcombe(
            treated.still_paying, treated.paying_at_entry, held.still_paying, held.paying_at_entry
        )
    nrr = None
    if (journey_id, False) in sums and (journey_id, True) in sums:
        nrr = stats.ratio_difference(sums[(journey_id, False)], sums[(journey_id, True)])
    kept_lift = (
        treated.kept_rate - held.kept_rate
        if treated.kept_rate is not None and held.kept_rate is not None
        else None
    )
    nrr_lift = (
        treated.net_mrr_retained - held.net_mrr_retained
        if treated.net_mrr_retained is not None and held.net_mrr_retained is not None
        else None
    )
    return Retention(
        window_days=window.total_seconds() / 86_400,
        treatment=treated,
        holdout=held,
        kept_lift=kept_lift,
        kept_low=kept.low if kept else None,
        kept_high=kept.high if kept else None,
        nrr_lift=nrr_lift,
        nrr_low=nrr.low if nrr else None,
        nrr_high=nrr.high if nrr else None,
        verdict=verdict(treated, held, kept_lift, kept, window, min_sample),
        method=f"accounts still paying: {stats.METHOD}; net MRR retained: {stats.RATIO_METHOD}",
    )


def verdict(
    treated: RetentionGroup,
    held: RetentionGroup,
    lift: float | None,
    interval: stats.Interval | None,
    window: timedelta,
    min_sample: int,
) -> str:
    """The retention lift in plain words: kept more / fewer customers, no clear difference, or pending."""
    days = f"{window.total_seconds() / 86_400:g}d"
    pending = treated.pending + held.pending
    if held.accounts == 0:
        return "no holdout: give the journey a `holdout:` share to judge it on retention"
    if treated.judged == 0 or held.judged == 0:
        return f"pending: {pending} entries younger than {days}" if pending else "no entries yet"
    if min(treated.paying_at_entry, held.paying_at_entry) < min_sample or lift is None or interval is None:
        waiting = f", {pending} pending" if pending else ""
        return f"not enough data yet (needs {min_sample} paying accounts judged per group{waiting})"
    spread = f"{100 * lift:+.1f} pts [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"
    if interval.low > 0:
        return f"kept more customers: {spread}"
    if interval.high < 0:
        return f"kept fewer customers: {spread}"
    return f"no clear difference: {spread}"
