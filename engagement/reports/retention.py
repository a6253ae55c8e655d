"""The retention report: per calendar month (UTC), the MRR bridge and the retention rates.

The definitions are PRODUCT.md's ("Revenue and retention"). Sums over accounts are SQL's
(`retention_queries`); here the running sums over months give each month's start MRR and paying
accounts, and the rates follow from the sums.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from engagement import errors, vocab
from engagement.reports import months as calendar
from engagement.reports import retention_queries as queries
from engagement.reports.months import Months
from engagement.store.database import Database

ALL = ""  # the group of the whole-base series


@dataclass
class Month:
    """One month's figures, for every account or for one group; a rate is None (n/a) when its base is 0."""

    month: str
    start_mrr: float
    new: float
    reactivation: float
    expansion: float
    contraction: float
    churned: float
    end_mrr: float
    paying_at_start: int
    new_accounts: int
    reactivated_accounts: int
    churned_accounts: int
    renewals_due: int
    renewed: int
    grr: float | None
    nrr: float | None
    logo_churn: float | None
    renewal_rate: float | None


@dataclass
class Compounded:
    """GRR and NRR over the range: the product of the monthly rates, over the months that have one."""

    grr: float | None
    nrr: float | None
    months: int  # months with accounts paying at their start; the others (n/a) are left out of the product


@dataclass
class Series:
    """Every month of the range for one group (ALL: the whole base)."""

    group: str
    months: list[Month]
    compounded: Compounded


@dataclass
class RetentionReport:
    """The whole base month by month, and the same figures per group when split (`by`)."""

    first_month: str
    last_month: str
    by: str | None
    generated_at: datetime
    in_progress: str | None  # the range's month that contains `generated_at`, if any
    total: Series
    groups: list[Series]


def _rate(numerator: float, base: float) -> float | None:
    return numerator / base if base else None


def _money(value: float) -> float:
    return round(value, 2) + 0.0  # + 0.0: never a -0.0


def _product(rates: list[float | None]) -> float | None:
    found = [r for r in rates if r is not None]
    if not found:
        return None
    result = 1.0
    for rate in found:
        result *= rate
    return result


def _series(group: str, months: Months, rows: list[queries.Row]) -> Series:
    """One group's months from its rows: boundary rows (changes, movements) and due rows."""
    change = [0.0] * (months.count + 1)
    paying = [0] * (months.count + 1)
    moved: dict[int, queries.Row] = {}
    due: dict[int, queries.Row] = {}
    for row in rows:  # one row per boundary or month of this group: at most 2 x months
        if row.kind == queries.DUE:
            due[row.k] = row
        else:
            change[row.k] += row.mrr_change
            paying[row.k] += row.paying_change
            moved[row.k] = row
    found = []
    start, paying_at_start = 0.0, 0
    for k, label in enumerate(months.labels()):
        start += change[k]
        paying_at_start += paying[k]
        m = moved.get(k + 1)  # the changes at the month's end boundary are the month's movements
        new, reactivation = (m.new, m.reactivation) if m else (0.0, 0.0)
        expansion, contraction, churned = (m.expansion, m.contraction, m.churned) if m else (0.0, 0.0, 0.0)
        s = _money(start)
        kept = s - _money(contraction) - _money(churned)
        d = due.get(k)
        found.append(
            Month(
                month=label,
                start_mrr=s,
                new=_money(new),
                reactivation=_money(reactivation),
                expansion=_money(expansion),
                contraction=_money(contraction),
                churned=_money(churned),
                end_mrr=_money(start + new + reactivation + expansion - contraction - churned),
                paying_at_start=paying_at_start,
                new_accounts=m.new_accounts if m else 0,
                reactivated_accounts=m.reactivated_accounts if m else 0,
                churned_accounts=m.churned_accounts if m else 0,
                renewals_due=d.due if d else 0,
                renewed=d.renewed if d else 0,
                grr=_rate(kept, s),
                nrr=_rate(kept + _money(expansion), s),
                logo_churn=_rate(m.churned_accounts if m else 0, paying_at_start),
                renewal_rate=_rate(d.renewed, d.due) if d else None,
            )
        )
    compounded = Compounded(
        grr=_product([m.grr for m in found]),
        nrr=_product([m.nrr for m in found]),
        months=sum(m.grr is not None for m in found),
    )
    return Series(group, found, compounded)


def _summed(rows: list[queries.Row]) -> list[queries.Row]:
    """The groups' rows added up per (kind, boundary or month): the whole base."""
    totals: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0] * 12)
    for row in rows:
        values = totals[(row.kind, row.k)]
        for i, value in enumerate(
            (
                row.mrr_change,
                row.paying_change,
                row.new,
                row.new_accounts,
                row.reactivation,
                row.reactivated_accounts,
                row.expansion,
                row.contraction,
                row.churned,
                row.churned_accounts,
                row.due,
                row.renewed,
            )
        ):
            values[i] += value
    return [
        queries.Row(
            kind,
            k,
            ALL,
            v[0],
            int(v[1]),
            v[2],
            int(v[3]),
            v[4],
            int(v[5]),
            v[6],
            v[7],
            v[8],
            int(v[9]),
            int(v[10]),
            int(v[11]),
        )
        for (kind, k), v in sorted(totals.items())
    ]


def split(value: str | None, option: str = "--by") -> vocab.RetentionBy | None:
    """The `--by` value (None: no split); the error names the option."""
    if not value:
        return None
    try:
        return vocab.RetentionBy(value)
    except ValueError:
        names = ", ".join(b.value for b in vocab.RetentionBy)
        shown = repr(value) if len(value) <= 40 else repr(value[:40]) + "…"
        raise errors.EngagementError(f"{option}: {shown} is not one of {names}") from None


def build(
    db: Database, months: Months, now: datetime, by: vocab.RetentionBy | None = None
) -> RetentionReport:
    """The report over `months`, split `by` touch tier, plan or signup month when asked."""
    with db.begin() as conn:
        rows = queries.rows(conn, months, by)
    per_group: dict[str, list[queries.Row]] = defaultdict(list)
    for row in rows:
        per_group[row.group].append(row)
    current = calendar.number(now.year, now.month)
    return RetentionReport(
        first_month=calendar.label(months.first),
        last_month=calendar.label(months.last),
        by=by.value if by else None,
        generated_at=now,
        in_progress=calendar.label(current) if months.first <= current <= months.last else None,
        total=_series(ALL, months, _summed(rows) if by else rows),
        groups=[s for g in sorted(per_group) if _moved(s := _series(g, months, per_group[g]))] if by else [],
    )


def _moved(series: Series) -> bool:
    """Whether a group has any figure (a plan named only by rows that paid nothing has none)."""
    return any(m.start_mrr or m.end_mrr or m.renewals_due or m.new or m.reactivation for m in series.months)
