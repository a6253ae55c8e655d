"""The report in the terminal: Rich tables built from the same sheets as the CSV."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from engagement.reports.model import Report
from engagement.reports.sheets import (
    ALL_STEPS,
    NOT_FOR_KIND,
    RETENTION_LIFT_METRICS,
    Cell,
    Sheet,
    about_kind,
    sheets,
)
from engagement.reports.stats import METHOD, NPS_METHOD

PERCENT = {
    "conversion_rate",
    "treated_rate",
    "holdout_rate",
    "relative_lift",
    "response_rate",
    "csat_satisfied",
    "kept_rate",
    "net_mrr_retained",
}
NPS = {"nps", "nps_ci95_low", "nps_ci95_high"}
SURVEY_SCORES = {*NPS, "csat_mean", "csat_satisfied"}
POINTS = {
    "absolute_lift",
    "ci95_low",
    "ci95_high",
    *(m for m in RETENTION_LIFT_METRICS if m not in ("verdict", "method")),
}
SHARES = {"within_7d", "within_14d", "within_30d"}


def display(metric: str, value: Cell) -> str:
    """How one number reads in a table: rates as %, lifts in percentage points, days with one decimal."""
    if value is None and metric in SURVEY_SCORES:
        return "n/a"  # nobody answered
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        return value
    if metric in PERCENT or metric in SHARES:
        return f"{100 * value:.1f}%"
    if metric in NPS:
        return f"{value:+.1f}"
    if metric in POINTS:
        return f"{100 * value:+.1f} pts"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _by_name(report: Report) -> dict[str, Sheet]:
    return {s.name: s for s in sheets(report)}


def funnel_table(sheet: Sheet, journey: str, title: str) -> Table:
    """One journey's funnel: a row per metric, a column for the journey and each step."""
    rows = [r for r in sheet.rows if r[0] == journey]
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for row in rows:
        table.add_column(str(row[1]) if row[1] != ALL_STEPS else "all steps", justify="right")
    for i, metric in enumerate(sheet.metrics):
        values = [row[len(sheet.keys) + i] for row in rows]
        table.add_row(metric, *(display(metric, v) for v in values))
    return table


LISTED = 200  # people listed by name on a screen or page; the files list everyone


def flat_table(sheet: Sheet, title: str, *, skip_zero_rows: bool = False, limit: int | None = None) -> Table:
    """A sheet as it is: one row per row (the first `limit`, with a caption saying how many more)."""
    table = Table(title=title, title_justify="left")
    for column in sheet.columns:
        table.add_column(column, justify="left" if column in sheet.keys else "right")
    rows = sheet.rows if limit is None else sheet.rows[:limit]
    if len(rows) < len(sheet.rows):
        table.caption = f"the first {len(rows)} of {len(sheet.rows)}; --format csv or json lists them all"
    for row in rows:
        metrics = row[len(sheet.keys) :]
        if skip_zero_rows and not any(isinstance(v, int) and v for v in metrics):
            continue
        table.add_row(*(display(c, v) for c, v in zip(sheet.columns, row, strict=True)))
    return table


def lift_table(sheet: Sheet, journey: str) -> Table:
    """One journey's outcome evidence as metric / value rows."""
    [row] = [r for r in sheet.rows if r[0] == journey]
    table = Table(
        "metric", "value", title=f"{journey}: outcome evidence (treatment vs holdout)", title_justify="left"
    )
    for metric, value in zip(sheet.metrics, row[len(sheet.keys) :], strict=True):
        if metric != "method":
            table.add_row(metric, display(metric, value))
    return table


def retention_table(found: dict[str, Sheet], journey: str) -> RenderableType:
    """One journey's retention evidence: a column per group, then the lifts and the verdict."""
    rows = [r for r in found["retention"].rows if r[0] == journey]
    metrics = found["retention"].metrics
    days = f"{rows[0][2]:g}d" if rows and isinstance(rows[0][2], float | int) else "?"
    table = Table(title=f"{journey}: retention, {days} after entry", title_justify="left")
    table.add_column("metric")
    for r in rows:
        table.add_column(str(r[1]), justify="right")
    for i, metric in enumerate(metrics[1:], start=1):
        table.add_row(metric, *(display(metric, r[2 + i]) for r in rows))
    [lift] = [r for r in found["retention_lift"].rows if r[0] == journey]
    lifts = Table("lift", "value", "95% interval")
    for name, at in (("still paying (treatment - holdout)", 1), ("net MRR retained", 4)):
        interval = f"[{display('kept_lift', lift[at + 1])}, {display('kept_lift', lift[at + 2])}]"
        lifts.add_row(name, display("kept_lift", lift[at]), interval if lift[at + 1] is not None else "–")
    return Group(table, lifts, Text(f"retention: {lift[7]}", style="bold"))


def daily_table(sheet: Sheet, journey: str) -> Table:
    """A journey's active days, with only the columns that have something in them."""
    rows = [r for r in sheet.rows if r[0] == journey]
    keep = [
        i
        for i, metric in enumerate(sheet.metrics)
        if any(isinstance(r[len(sheet.keys) + i], int | float) and r[len(sheet.keys) + i] for r in rows)
    ]
    narrowed = Sheet(
        sheet.name,
        ("day",),
        tuple(sheet.metrics[i] for i in keep),
        [(r[1], *(r[len(sheet.keys) + i] for i in keep)) for r in rows],
    )
    return flat_table(narrowed, f"{journey}: by day (days with activity)", skip_zero_rows=True)


def survey_tables(sheet: Sheet, journey: str) -> list[Table]:
    """A table per survey step: a row per figure its kind has, a column for all tiers and each tier."""
    found = []
    rows = [r for r in sheet.rows if r[0] == journey]
    for step in dict.fromkeys(r[1] for r in rows):
        columns = [r for r in rows if r[1] == step]
        kind = str(about_kind(sheet, columns[0]))
        table = Table(
            title=f"{journey}: {kind.upper()} survey {step} by touch tier (each contact's latest answer)",
            title_justify="left",
        )
        table.add_column("metric")
        for row in columns:
            table.add_column(str(row[2]), justify="right")
        for i, metric in enumerate(sheet.metrics):
            if metric != "kind" and metric not in NOT_FOR_KIND.get(kind, ()):
                table.add_row(metric, *(display(metric, row[len(sheet.keys) + i]) for row in columns))
        found.append(table)
    return found


def render(report: Report) -> RenderableType:
    """Every section, journey by journey, then the engagement scores."""
    found = _by_name(report)
    parts: list[RenderableType] = [
        Text(
            f"Report for {report.period.label()} (UTC), made {report.generated_at:%Y-%m-%d %H:%M} UTC",
            style="bold",
        )
    ]
    if report.note:
        parts.append(Text(report.note, style="yellow"))
    for j in report.journeys:
        parts.append(Text(""))
        parts.append(funnel_table(found["funnel"], j.id, f"{j.name} ({j.id})"))
        if j.lift is not None:
            parts.append(lift_table(found["lift"], j.id))
        if j.retention is not None:
            parts.append(retention_table(found, j.id))
        ttv = Sheet(
            "ttv",
            found["time_to_value"].keys[1:],
            found["time_to_value"].metrics,
            [r[1:] for r in found["time_to_value"].rows if r[0] == j.id],
        )
        if ttv.rows:
            parts.append(flat_table(ttv, f"{j.id}: time-to-value, {j.ttv_note}"))
        else:
            parts.append(
                Text(
                    f"{j.id}: time-to-value: {j.ttv_note}; nobody in range"
                    if j.goal_milestone
                    else f"{j.id}: time-to-value: {j.ttv_note}",
                    style="dim",
                )
            )
        parts.append(daily_table(found["daily"], j.id))
        if j.surveys:
            parts.extend(survey_tables(found["surveys"], j.id))
    parts.append(Text(f"Interval: {METHOD}.", style="dim"))
    if any(j.surveys for j in report.journeys):
        parts.append(Text(f"NPS interval: {NPS_METHOD}.", style="dim"))
    for name, title in (
        ("score_bands", "Engagement score bands by day"),
        ("turned_red", "Moved to red this week"),
        ("top_steps", "Top responding steps (clicks and nudge clicks per message sent)"),
    ):
        parts.append(flat_table(found[name], title, limit=LISTED if name == "turned_red" else None))
    return Group(*parts)


def print_report(report: Report, console: Console) -> None:
    """Print the report to a console."""
    console.print(render(report))
