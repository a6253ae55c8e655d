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
    moved: dict[int, list[float]] = defaultdict(lambda: [0.0] * 8)
    due: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:  # a few rows per boundary and month of this group, never one per account
        if row.j >= 0:
            change[row.j] += row.mrr_change
            paying[row.j] += row.paying_change
            m = moved[row.j]
            for i, value in enumerate(
                (
                    row.new,
                    row.reactivation,
                    row.expansion,
                    row.contraction,
                    row.churned,
                    row.new_accounts,
                    row.reactivated_accounts,
                    row.churned_accounts,
                )
            ):
                m[i] += value
        if row.due_month >= 0:
            due[row.due_month][0] += row.due
            due[row.due_month][1] += row.renewed
    found = []
    start, paying_at_start = 0.0, 0
    for k, label in enumerate(months.labels()):
        start += change[k]
        paying_at_start += paying[k]
        # the changes at the month's end boundary are the month's movements
        new, reactivation, expansion, contraction, churned, arrived, returned, lost = moved.get(
            k + 1, [0.0] * 8
        )
        s = _money(start)
        kept = s - _money(contraction) - _money(churned)
        due_now, renewed = due.get(k, [0, 0])
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
                new_accounts=int(arrived),
                reactivated_accounts=int(returned),
                churned_accounts=int(lost),
                renewals_due=due_now,
                renewed=renewed,
                grr=_rate(kept, s),
                nrr=_rate(kept + _money(expansion), s),
                logo_churn=_rate(lost, paying_at_start),
                renewal_rate=_rate(renewed, due_now),
            )
        )
    compounded = Compounded(
        grr=_product([m.grr for m in found]),
        nrr=_product([m.nrr for m in found]),
        months=sum(m.grr is not None for m in found),
    )
    return Series(group, found, compounded)


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
        total=_series(ALL, months, rows),  # every group's rows together are the whole base's
        groups=[s for g in sorted(per_group) if _moved(s := _series(g, months, per_group[g]))] if by else [],
    )


def _moved(series: Series) -> bool:
    """Whether a group has any figure (a plan named only by rows that paid nothing has none)."""
    return any(m.start_mrr or m.end_mrr or m.renewals_due or m.new or m.reactivation for m in series.months)
