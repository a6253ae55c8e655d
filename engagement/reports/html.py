"""The report as one self-contained HTML page: inline CSS and SVG charts, no script, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from engagement.reports import charts
from engagement.reports.model import JourneyReport, Report
from engagement.reports.sheets import ALL_STEPS, NOT_FOR_KIND, Cell, Sheet, about_kind, sheets
from engagement.reports.stats import METHOD, NPS_METHOD
from engagement.reports.tables import LISTED, display

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;color:#1f2937;margin:0;background:#f9fafb}
header{background:#111827;color:#fff;padding:.8rem 1.5rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}
header h1{font-size:1.1rem;margin:0}header a{color:#93c5fd}
header form{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
header input,header select,header button{font:inherit;padding:.2rem .4rem}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
h2{margin:.2rem 0 .6rem;font-size:1.2rem}h3{font-size:1rem;margin:1rem 0 .4rem}
table{border-collapse:collapse;font-size:12.5px;margin:.4rem 0;display:block;overflow-x:auto}
th,td{padding:.2rem .55rem;border-bottom:1px solid #f3f4f6;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f9fafb;font-weight:600}
.verdict{font-weight:600}.muted{color:#6b7280;font-size:.9em}.grid{display:grid;grid-template-columns:1fr;gap:.5rem}
"""
LOGOUT_FORM = (  # a POST: a link or an image elsewhere must not end a session (the cookie is SameSite=Lax)
    '<form method="post" action="/reports/logout" style="display:inline;margin:0">'
    '<button type="submit" style="font:inherit;color:inherit;background:none;border:0;padding:0;'
    'text-decoration:underline;cursor:pointer">log out</button></form>'
)
FUNNEL_BARS = (
    ("entered", "entered"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("unique opens", "unique_opens"),
    ("unique clicks", "unique_clicks"),
    ("nudges seen", "nudges_seen"),
    ("nudges clicked", "nudges_clicked"),
    ("goal conversions", "conversions"),
)


@dataclass(frozen=True)
class Controls:
    """The dashboard's journey picker and date range (absent in the stand-alone file)."""

    journeys: Sequence[tuple[str, str]]
    selected: str | None
    first: str
    last: str
    user: str


def _table(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(display(c, v))}</td>" for c, v in zip(columns, row, strict=True))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _funnel_table(sheet: Sheet, journey: str) -> str:
    rows = [r for r in sheet.rows if r[0] == journey]
    columns = ["metric", *("all steps" if r[1] == ALL_STEPS else f"{r[1]} ({r[2]})" for r in rows)]
    body = [[metric, *(r[len(sheet.keys) + i] for r in rows)] for i, metric in enumerate(sheet.metrics)]
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    cells = "".join(
        "<tr>" + "".join(f"<td>{escape(display(str(row[0]), v))}</td>" for v in row) + "</tr>" for row in body
    )
    return f'<table class="funnel"><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>'


def _journey(j: JourneyReport, found: dict[str, Sheet], link: str | None) -> str:
    t = j.totals
    title = escape(f"{j.name} ({j.id})")
    heading = f'<a href="{escape(link)}">{title}</a>' if link else title
    rate = display("conversion_rate", j.conversion_rate)
    parts = [
        f'<section class="journey" id="journey-{escape(j.id)}"><h2>{heading}</h2>',
        f'<p class="muted">{t.entered} entered ({t.holdout} in holdout), {t.sent} messages sent, '
        f"{t.conversions} goal conversions ({rate}).</p>",
        "<h3>Funnel</h3>",
        charts.bars(f"{j.id} funnel", [(name, getattr(t, field)) for name, field in FUNNEL_BARS]),
        _funnel_table(found["funnel"], j.id),
        "<h3>By day</h3>",
        charts.lines(
            f"{j.id} daily sends, opens and clicks",
            [d.day.isoformat() for d in j.daily],
            {
                "sent": [d.counts.sent for d in j.daily],
                "unique opens": [d.counts.unique_opens for d in j.daily],
                "unique clicks": [d.counts.unique_clicks for d in j.daily],
                "nudges clicked": [d.counts.nudges_clicked for d in j.daily],
                "conversions": [d.counts.conversions for d in j.daily],
            },
        ),
    ]
    parts.append("<h3>Outcome evidence: treatment vs holdout</h3>")
    if j.lift is None:
        parts.append('<p class="muted">This journey has no goal, so there is nothing to convert to.</p>')
    else:
        x = j.lift
        if x.absolute is not None and x.low is not None and x.high is not None:
            parts.append(
                charts.interval(
                    f"{j.id} lift with its 95% interval",
                    x.absolute,
                    x.low,
                    x.high,
                    [("treatment", x.treated_rate or 0.0), ("holdout", x.holdout_rate or 0.0)],
                )
            )
        parts.append(f'<p class="verdict">{escape(x.verdict)}</p>')
        lift = [r for r in found["lift"].rows if r[0] == j.id]
        parts.append(_table(found["lift"].metrics[:-2], [r[1:-2] for r in lift]))
    if j.retention is not None:
        parts.append(_retention(j, found))
    parts.append(f"<h3>Time-to-value</h3><p class=muted>{escape(j.ttv_note)}</p>")
    if j.ttv:
        weeks = sorted({c.week.isoformat() for c in j.ttv})
        medians = {
            group: [
                next((c.median_days for c in j.ttv if c.group == group and c.week.isoformat() == w), None)
                for w in weeks
            ]
            for group in ("treatment", "holdout")
        }
        parts.append(charts.grouped(f"{j.id} median days to value by signup week", weeks, medians, "days"))
        ttv = found["time_to_value"]
        parts.append(_table(ttv.columns[1:], [r[1:] for r in ttv.rows if r[0] == j.id]))
    if j.surveys:
        survey = found["surveys"]
        parts.append(
            "<h3>Surveys by touch tier</h3><p class=muted>NPS and CSAT from each contact's latest answer; "
            f"NPS interval: {escape(NPS_METHOD)}</p>"
        )
        for kind, skip in NOT_FOR_KIND.items():  # one table per kind, with the figures that kind has
            rows = [r for r in survey.rows if r[0] == j.id and about_kind(survey, r) == kind]
            keep = [i for i, c in enumerate(survey.columns) if i and c not in skip]
            if rows:
                parts.append(_table([survey.columns[i] for i in keep], [[r[i] for i in keep] for r in rows]))
    parts.append("</section>")
    return "".join(parts)


def _retention(j: JourneyReport, found: dict[str, Sheet]) -> str:
    """Did it keep customers: each group's accounts and MRR a window after entry, the lift and verdict."""
    r = j.retention
    assert r is not None
    parts = [f"<h3>Did it keep customers? Accounts {r.window_days:g} days after entry</h3>"]
    if r.kept_lift is not None and r.kept_low is not None and r.kept_high is not None:
        parts.append(
            charts.interval(
                f"{j.id} accounts still paying: lift with its 95% interval",
                r.kept_lift,
                r.kept_low,
                r.kept_high,
                [("treatment", r.treatment.kept_rate or 0.0), ("holdout", r.holdout.kept_rate or 0.0)],
            )
        )
    parts.append(f'<p class="verdict">Retention: {escape(r.verdict)}</p>')
    kept = found["retention"]
    parts.append(_table(kept.columns[1:], [row[1:] for row in kept.rows if row[0] == j.id]))
    lift = found["retention_lift"]
    parts.append(_table(lift.metrics[:-2], [row[1:-2] for row in lift.rows if row[0] == j.id]))
    return "".join(parts)


def _engagement(report: Report, found: dict[str, Sheet]) -> str:
    parts = ['<section id="engagement"><h2>Engagement scores</h2>']
    for subject_type in ("contact", "account"):
        days = [b for b in report.bands if b.subject_type == subject_type]
        if days:
            parts.append(f"<h3>{subject_type.title()} score bands by day</h3>")
            parts.append(
                charts.stacked(
                    f"{subject_type} score bands by day",
                    [b.day.isoformat() for b in days],
                    {
                        "red": [b.red for b in days],
                        "yellow": [b.yellow for b in days],
                        "green": [b.green for b in days],
                    },
                )
            )
    if not report.bands:
        parts.append('<p class="muted">No daily score snapshots in this range yet.</p>')
    red = found["turned_red"]
    parts.append(f"<h3>Moved to red this week ({len(red.rows)})</h3>")
    parts.append(_table(red.columns, red.rows[:LISTED]) if red.rows else '<p class="muted">Nobody.</p>')
    top = found["top_steps"]
    parts.append(
        "<h3>Top responding steps</h3><p class=muted>clicks (email) and nudge clicks per message sent</p>"
    )
    parts.append(_table(top.columns, top.rows) if top.rows else '<p class="muted">Nothing sent yet.</p>')
    parts.append("</section>")
    return "".join(parts)


def _controls(c: Controls) -> str:
    options = ['<option value="">all journeys</option>'] + [
        f'<option value="{escape(j)}"{" selected" if j == c.selected else ""}>{escape(name)}</option>'
        for j, name in c.journeys
    ]
    return (
        '<form method="get" action="/reports">'
        f'<label>Journey <select name="journey">{"".join(options)}</select></label>'
        f'<label>From <input type="date" name="from" value="{escape(c.first)}"></label>'
        f'<label>To <input type="date" name="to" value="{escape(c.last)}"></label>'
        '<button type="submit">Show</button></form>'
        f'<span class="muted"><a href="/journeys">CS views</a> · <a href="/reports/retention">retention</a> · '
        f"{escape(c.user)} · {LOGOUT_FORM}</span>"
    )


def page(report: Report, controls: Controls | None = None) -> str:
    """The whole page; with `controls` it is the dashboard (picker, drill-down links)."""
    found = {s.name: s for s in sheets(report)}
    dates = {"from": report.period.first_day.isoformat(), "to": report.period.last_day.isoformat()}
    body = [
        _journey(j, found, f"/reports?{urlencode({'journey': j.id, **dates})}" if controls else None)
        for j in report.journeys
    ]
    if report.note:
        body.insert(0, f'<p class="note"><strong>{escape(report.note)}</strong></p>')
    if not report.journeys:
        body.append('<section><p class="muted">No journeys in this range.</p></section>')
    header = f"<h1>Engagement report · {escape(report.period.label())} (UTC)</h1>"
    if controls:
        header += _controls(controls)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>Engagement report {escape(report.period.label())}</title><style>{STYLE}</style></head>"
        f"<body><header>{header}</header><main>{''.join(body)}{_engagement(report, found)}"
        f'<p class="muted">Made {report.generated_at:%Y-%m-%d %H:%M} UTC. Lift interval: {escape(METHOD)}. '
        "Unique opens and clicks count messages (one delivery to one person), not events. Message counts are "
        "activity in the range; entered, holdout and conversions are enrollments that entered in the range.</p>"
        "</main></body></html>"
    )
