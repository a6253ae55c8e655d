"""The retention report as one self-contained HTML page: the MRR bridge, GRR/NRR lines and the tables."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from engagement import vocab
from engagement.reports import charts
from engagement.reports.html import LOGOUT_FORM, STYLE
from engagement.reports.retention import ALL, RetentionReport, Series
from engagement.reports.retention_sheets import METRICS, compounded, display


@dataclass(frozen=True)
class Controls:
    """The dashboard's month range and split (absent in the stand-alone file)."""

    first: str
    last: str
    by: str | None
    user: str


def _table(report: RetentionReport, series: Series) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in ("month", *METRICS))
    body = "".join(
        "<tr>"
        + f"<td>{escape(m.month)}{' *' if m.month == report.in_progress else ''}</td>"
        + "".join(f"<td>{escape(display(metric, getattr(m, metric)))}</td>" for metric in METRICS)
        + "</tr>"
        for m in series.months
    )
    return f'<table class="retention"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _charts(report: RetentionReport, series: Series) -> str:
    months = series.months
    if not months:
        return ""
    totals = {
        name: sum(getattr(m, name) for m in months)
        for name in ("new", "reactivation", "expansion", "contraction", "churned")
    }
    steps = [
        ("new", totals["new"]),
        ("reactivation", totals["reactivation"]),
        ("expansion", totals["expansion"]),
        ("contraction", -totals["contraction"]),
        ("churn", -totals["churned"]),
    ]
    span = f"{report.first_month} to {report.last_month}"
    return charts.bridge(f"MRR bridge {span}", months[0].start_mrr, steps, months[-1].end_mrr) + charts.lines(
        f"GRR and NRR by month {span}",
        [m.month for m in months],
        {"GRR": [m.grr for m in months], "NRR": [m.nrr for m in months]},
        kind="rates",
        percent=True,
    )


def _section(report: RetentionReport, series: Series, *, charted: bool) -> str:
    title = "All accounts" if series.group == ALL else f"{report.by}: {series.group}"
    ident = "retention-all" if series.group == ALL else f"retention-{report.by}-{series.group}"
    return (
        f'<section class="retention" id="{escape(ident)}"><h2>{escape(title)}</h2>'
        + (_charts(report, series) if charted else "")
        + f'<p class="compounded">{escape(_sentence(compounded(series)))}.</p>'
        + _table(report, series)
        + "</section>"
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _controls(c: Controls) -> str:
    options = ['<option value="">no split</option>'] + [
        f'<option value="{b.value}"{" selected" if b.value == c.by else ""}>by {b.value}</option>'
        for b in vocab.RetentionBy
    ]
    return (
        '<form method="get" action="/reports/retention">'
        f'<label>From <input type="month" name="from" value="{escape(c.first)}"></label>'
        f'<label>To <input type="month" name="to" value="{escape(c.last)}"></label>'
        f'<label>Split <select name="by">{"".join(options)}</select></label>'
        '<button type="submit">Show</button></form>'
        f'<span class="muted"><a href="/reports">journeys</a> · <a href="/journeys">CS views</a> · {escape(c.user)} · '
        f"{LOGOUT_FORM}</span>"
    )


def page(report: RetentionReport, controls: Controls | None = None) -> str:
    """The whole page; with `controls` it is the dashboard's retention page."""
    span = f"{report.first_month} to {report.last_month}"
    header = f"<h1>Retention · {escape(span)} (UTC months)</h1>"
    if controls:
        header += _controls(controls)
    body = [_section(report, report.total, charted=True)]
    body += [_section(report, s, charted=False) for s in report.groups]
    note = (
        f" * {escape(report.in_progress)} is in progress: its figures count the rows recorded so far."
        if report.in_progress
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>Retention {escape(span)}</title><style>{STYLE}</style></head>"
        f"<body><header>{header}</header><main>{''.join(body)}"
        f'<p class="muted">Made {report.generated_at:%Y-%m-%d %H:%M} UTC. A month runs from its first instant '
        "to the next month's (UTC); an account's MRR at an instant is that of its latest revenue row at or "
        "before it. GRR = (start − contraction − churned) / start; NRR = (start + expansion − contraction − "
        "churned) / start; n/a where the month has no paying accounts at its start (left out of the compounded "
        f"rates).{note}</p></main></body></html>"
    )
