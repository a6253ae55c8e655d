"""The retention report in the terminal (Rich tables), as one tidy CSV and as one JSON document."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from engagement.reports import spreadsheet
from engagement.reports.retention import ALL, RetentionReport, Series

MONEY = ("start_mrr", "new", "reactivation", "expansion", "contraction", "churned", "end_mrr")
COUNTS = (
    "paying_at_start",
    "new_accounts",
    "reactivated_accounts",
    "churned_accounts",
    "renewals_due",
    "renewed",
)
RATES = ("grr", "nrr", "logo_churn", "renewal_rate")
METRICS = (*MONEY, *COUNTS, *RATES)
CSV_COLUMNS = ("section", "by", "group", "month", "metric", "value")
NOT_AVAILABLE = "n/a"


def display(metric: str, value: Any) -> str:
    """How one figure reads: money with cents, rates as % (n/a without a base), counts as they are."""
    if metric in RATES or metric.startswith("compounded_"):
        return NOT_AVAILABLE if value is None else f"{100 * value:.1f}%"
    if metric in MONEY:
        return f"{value:,.2f}"
    return str(value)


def _label(report: RetentionReport, series: Series) -> str:
    return "all accounts" if series.group == ALL else f"{report.by} {series.group}"


def compounded(series: Series) -> str:
    """The range's compounded GRR and NRR in words."""
    c = series.compounded
    return (
        f"compounded over {c.months} month(s) with paying accounts: GRR {display('grr', c.grr)}, "
        f"NRR {display('nrr', c.nrr)}"
    )


def month_table(report: RetentionReport, series: Series) -> Table:
    """One series: a row per month, a column per figure."""
    table = Table(title=f"Retention, {_label(report, series)}", title_justify="left")
    table.add_column("month")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for month in series.months:
        marker = " *" if month.month == report.in_progress else ""
        table.add_row(month.month + marker, *(display(m, getattr(month, m)) for m in METRICS))
    table.caption = compounded(series)
    return table


def render(report: RetentionReport) -> RenderableType:
    """The whole base, then each group."""
    parts: list[RenderableType] = [
        Text(
            f"Retention {report.first_month} to {report.last_month} (UTC months), "
            f"made {report.generated_at:%Y-%m-%d %H:%M} UTC",
            style="bold",
        )
    ]
    if report.in_progress:
        parts.append(
            Text(
                f"* {report.in_progress} is in progress: its figures count the rows recorded so far.",
                style="dim",
            )
        )
    for series in (report.total, *report.groups):
        parts.append(month_table(report, series))
    return Group(*parts)


def print_report(report: RetentionReport, console: Console) -> None:
    """Print the report to a console."""
    console.print(render(report))


def to_csv(report: RetentionReport) -> str:
    """One tidy CSV: a row per figure (section, by, group, month, metric, value); n/a is an empty value.

    Text cells that a spreadsheet would run as a formula are neutralised (`spreadsheet.cell`): a plan name
    is whatever the import said."""
    out = io.StringIO()
    writer = spreadsheet.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    by = report.by or ""
    for series in (report.total, *report.groups):
        for month in series.months:
            for metric in METRICS:
                value = getattr(month, metric)
                writer.writerow(
                    ("monthly", by, series.group, month.month, metric, "" if value is None else value)
                )
        c = series.compounded
        span = f"{report.first_month}..{report.last_month}"
        for metric, value in (
            ("compounded_grr", c.grr),
            ("compounded_nrr", c.nrr),
            ("months_with_a_base", c.months),
        ):
            writer.writerow(("range", by, series.group, span, metric, "" if value is None else value))
    return out.getvalue()


def _series(series: Series) -> dict[str, Any]:
    return {
        "group": series.group,
        "months": [dataclasses.asdict(m) for m in series.months],
        "compounded": dataclasses.asdict(series.compounded),
    }


def to_json(report: RetentionReport) -> dict[str, Any]:
    """The whole report as JSON-ready data (rates as fractions, n/a as null)."""
    return {
        "first_month": report.first_month,
        "last_month": report.last_month,
        "by": report.by,
        "generated_at": report.generated_at.isoformat(),
        "in_progress": report.in_progress,
        "total": _series(report.total),
        "groups": [_series(s) for s in report.groups],
    }
