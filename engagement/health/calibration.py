"""`engagement report health`: is the score right? Renewals and churn by the band each account had earlier.

For every renewal due in the range (an account's `renewal_date`, on the account or on any of its revenue
rows, falling in the range and not after now): renewed when the account still pays at the end of that day,
and its band is its health snapshot `reports.calibration_lead` before the renewal date (or the latest in
the week before that day). For every
churn in the range (a revenue row of MRR 0 after a paying one): its band at the same lead before the day it
churned. Every figure is one GROUP BY over all accounts; without a snapshot that far back an account is
counted under `none`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Date, Integer, and_, case, func, literal, select, union
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from engagement.reports.months import Months
from engagement.store import functions, schema
from engagement.store.database import Database

BANDS = ("green", "yellow", "red", "unknown", "none")  # none: no snapshot at the lead
SNAPSHOT_GAP = 7  # days: the band at the lead is the latest snapshot at most this much older
MIN_SEPARATION = 0.10  # green's renewal rate must beat red's by this much to call the score separating
rev, acc, snap = schema.table(schema.Revenue).c, schema.accounts.c, schema.health_snapshots.c


class _DateShift(FunctionElement[Any]):
    """A date plus a number of days, as a date."""

    inherit_cache = True
    name = "date_shift"
    type = Date()


class _InstantDay(FunctionElement[Any]):
    """The UTC calendar day of a timestamp plus a number of days, as a date."""

    inherit_cache = True
    name = "instant_day"
    type = Date()


functions.render(
    _DateShift,
    sqlite=lambda _, args: f"date({args[0]}, ({args[1]}) || ' days')",
    postgresql=lambda _, args: f"(({args[0]}) + ({args[1]}))",
)
functions.render(
    _InstantDay,
    sqlite=lambda _, args: f"date({args[0]}, ({args[1]}) || ' days')",
    postgresql=lambda _, args: f"((({args[0]}) AT TIME ZONE 'UTC')::date + ({args[1]}))",
)


class _DayEnd(FunctionElement[Any]):
    """The first instant after a date (its next midnight UTC), comparable with stored timestamps."""

    inherit_cache = True
    name = "day_end"


functions.render(
    _DayEnd,
    sqlite=lambda _, args: f"date({args[0]}, '+1 days')",  # text compares with 'YYYY-MM-DD HH:MM:SS…'
    postgresql=lambda _, args: f"((({args[0]}) + 1)::timestamp AT TIME ZONE 'UTC')",
)


def shifted(day: Any, days: int, *, instant: bool = False) -> ColumnElement[Any]:
    """SQL: `day` (a date, or the UTC day of a timestamp) plus `days` days, as a date."""
    kind = _InstantDay if instant else _DateShift
    return kind(day, literal(days, Integer))


@dataclass(frozen=True)
class BandOutcome:
    """One band at the lead: renewals due, renewed, and churned accounts."""

    band: str
    due: int
    renewed: int
    churned: int

    @property
    def renewal_rate(self) -> float | None:
        return self.renewed / self.due if self.due else None


@dataclass(frozen=True)
class Calibration:
    """The calibration report over a range of months."""

    months: Months
    lead: timedelta
    rows: list[BandOutcome]
    verdict: str

    @property
    def churned(self) -> int:
        return sum(r.churned for r in self.rows)

    def churn_share(self, row: BandOutcome) -> float | None:
        """The band's share of the churned accounts."""
        return row.churned / self.churned if self.churned else None


def build(db: Database, months: Months, lead: timedelta, now: datetime, min_sample: int = 30) -> Calibration:
    """Renewal rate and churn share by the band at `lead` before, for renewals and churn in `months`."""
    start, end = months.boundary(0), min(months.boundary(months.count), now)
    days = lead.days
    with db.begin() as conn:
        due = _renewals(conn, start, end, days)
        churned = _churned(conn, start, end, days)
    rows = [BandOutcome(b, due.get(b, (0, 0))[0], due.get(b, (0, 0))[1], churned.get(b, 0)) for b in BANDS]
    return Calibration(months, lead, rows, verdict(rows, min_sample))


def _band_at(account: Any, day: Any, before: Any) -> ColumnElement[Any]:
    """The band of the account's latest snapshot in (before, day]: a day the snapshot missed (downtime, or a
    weekly cadence) takes the one before it, never one older than SNAPSHOT_GAP."""
    found = (
        select(snap.band)
        .where(snap.account_id == account, snap.day <= day, snap.day > before)
        .order_by(snap.day.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(found, literal("none"))


def _renewals(conn: Connection, start: datetime, end: datetime, lead_days: int) -> dict[str, tuple[int, int]]:
    first, last = start.date(), end.date()
    dated = union(
        select(rev.account_id, rev.renewal_date).where(rev.renewal_date >= first, rev.renewal_date < last),
        select(acc.id.label("account_id"), acc.renewal_date).where(
            acc.renewal_date >= first, acc.renewal_date < last
        ),
    ).subquery("due")
    latest = (
        select(rev.mrr)
        .where(rev.account_id == dated.c.account_id, rev.effective_at < _DayEnd(dated.c.renewal_date))
        .order_by(rev.effective_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    paying = case((func.coalesce(latest, 0.0) > 0, 1), else_=0)
    per = (
        select(
            _band_at(
                dated.c.account_id,
                shifted(dated.c.renewal_date, -lead_days),
                shifted(dated.c.renewal_date, -lead_days - SNAPSHOT_GAP),
            ).label("band"),
            paying.label("renewed"),
        )
        .select_from(dated)
        .subquery("per")
    )
    rows = conn.execute(select(per.c.band, func.count(), func.sum(per.c.renewed)).group_by(per.c.band))
    return {band: (int(n), int(renewed or 0)) for band, n, renewed in rows}


def _churned(conn: Connection, start: datetime, end: datetime, lead_days: int) -> dict[str, int]:
    r = schema.table(schema.Revenue).alias("r")
    previous = (
        select(rev.mrr)
        .where(rev.account_id == r.c.account_id, rev.effective_at < r.c.effective_at)
        .order_by(rev.effective_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    churns = (
        select(
            _band_at(
                r.c.account_id,
                shifted(r.c.effective_at, -lead_days, instant=True),
                shifted(r.c.effective_at, -lead_days - SNAPSHOT_GAP, instant=True),
            ).label("band")
        )
        .select_from(r)
        .where(and_(r.c.mrr <= 0, r.c.effective_at >= start, r.c.effective_at < end, previous > 0))
    )
    per = churns.subquery("churns")
    return {band: int(n) for band, n in conn.execute(select(per.c.band, func.count()).group_by(per.c.band))}


def verdict(rows: list[BandOutcome], min_sample: int) -> str:
    """Whether the bands separate renewals from churn: renewal rates fall from green to red, by a margin."""
    banded = {r.band: r for r in rows if r.band in ("green", "yellow", "red") and r.due}
    total = sum(r.due for r in banded.values())
    if total < min_sample or "green" not in banded or "red" not in banded:
        return f"too few renewals with a band at the lead to judge ({total}; at least {min_sample}, green and red)"
    rates = [banded[b].renewal_rate for b in ("green", "yellow", "red") if b in banded]
    falling = all(a is not None and b is not None and a >= b for a, b in itertools.pairwise(rates))
    green, red = banded["green"].renewal_rate or 0.0, banded["red"].renewal_rate or 0.0
    if falling and green - red >= MIN_SEPARATION:
        return f"the score separates renewals from churn: green renews {green:.0%}, red {red:.0%}"
    return f"the score does NOT separate renewals from churn: green renews {green:.0%}, red {red:.0%}"


def to_json(made: Calibration) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {
        "from": made.months.describe(),
        "lead_days": made.lead.days,
        "bands": [
            {
                "band": r.band,
                "renewals_due": r.due,
                "renewed": r.renewed,
                "renewal_rate": r.renewal_rate,
                "churned": r.churned,
                "churn_share": made.churn_share(r),
            }
            for r in made.rows
        ],
        "verdict": made.verdict,
    }
