"""A report as flat sheets (the terminal tables and the CSV) and as one JSON document."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from engagement.reports import spreadsheet
from engagement.reports.model import COUNT_FIELDS, ENROLLMENT_FIELDS, Counts, Report
from engagement.reports.period import Period

ALL_STEPS = "(all steps)"
Cell = str | int | float | None


@dataclass
class Sheet:
    """One table: key columns say what a row is about, metric columns hold its numbers."""

    name: str
    keys: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: list[tuple[Cell, ...]]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.keys + self.metrics


FUNNEL_METRICS = (*COUNT_FIELDS, "conversion_rate")
LIFT_METRICS = (
    "treated",
    "treated_converted",
    "treated_rate",
    "holdout",
    "holdout_converted",
    "holdout_rate",
    "absolute_lift",
    "relative_lift",
    "ci95_low",
    "ci95_high",
    "verdict",
    "method",
)
RETENTION_METRICS = (
    "window_days",
    "accounts",
    "pending",
    "judged",
    "paying_at_entry",
    "still_paying",
    "kept_rate",
    "mrr_at_entry",
    "mrr_after",
    "net_mrr_retained",
)
RETENTION_LIFT_METRICS = (
    "kept_lift",
    "kept_ci95_low",
    "kept_ci95_high",
    "nrr_lift",
    "nrr_ci95_low",
    "nrr_ci95_high",
    "verdict",
    "method",
)
SURVEY_METRICS = (
    "kind",
    "sent",
    "answered",
    "response_rate",
    "respondents",
    "promoters",
    "passives",
    "detractors",
    "nps",
    "nps_ci95_low",
    "nps_ci95_high",
    "csat_mean",
    "csat_satisfied",
)
# a survey step's figures that mean nothing for its kind (left out of the CSV and the tables)
NOT_FOR_KIND = {
    "nps": frozenset({"csat_mean", "csat_satisfied"}),
    "csat": frozenset({"promoters", "passives", "detractors", "nps", "nps_ci95_low", "nps_ci95_high"}),
}
TTV_METRICS = ("people", "reached", "median_days", "p75_days", "within_7d", "within_14d", "within_30d")


def _counts(counts: Counts, rate: float | None, *, enrollment: bool = True) -> tuple[Cell, ...]:
    values: list[Cell] = [
        getattr(counts, name) if enrollment or name not in ENROLLMENT_FIELDS else None
        for name in COUNT_FIELDS
    ]
    return (*values, rate)


def sheets(report: Report) -> list[Sheet]:
    """Every section of the report as a sheet."""
    funnel: list[tuple[Cell, ...]] = []
    daily: list[tuple[Cell, ...]] = []
    lift: list[tuple[Cell, ...]] = []
    ttv: list[tuple[Cell, ...]] = []
    kept: list[tuple[Cell, ...]] = []
    kept_lift: list[tuple[Cell, ...]] = []
    survey: list[tuple[Cell, ...]] = []
    for j in report.journeys:
        funnel.append((j.id, ALL_STEPS, "", *_counts(j.totals, j.conversion_rate)))
        for s in j.steps:
            funnel.append((j.id, s.step, s.channel, *_counts(s.counts, s.conversion_rate, enrollment=False)))
        for d in j.daily:
            daily.append((j.id, d.day.isoformat(), *_counts(d.counts, d.conversion_rate)))
        if j.lift is not None:
            x = j.lift
            lift.append(
                (
                    j.id,
                    x.treated,
                    x.treated_converted,
                    x.treated_rate,
                    x.holdout,
                    x.holdout_converted,
                    x.holdout_rate,
                    x.absolute,
                    x.relative,
                    x.low,
                    x.high,
                    x.verdict,
                    x.method,
                )
            )
        for f in j.surveys:
            survey.append(
                (
                    j.id,
                    f.step,
                    f.touch,
                    f.kind,
                    f.sent,
                    f.answered,
                    f.response_rate,
                    f.respondents,
                    f.promoters,
                    f.passives,
                    f.detractors,
                    f.nps,
                    f.nps_low,
                    f.nps_high,
                    f.csat_mean,
                    f.csat_satisfied,
                )
            )
        if j.retention is not None:
            r = j.retention
            for g in (r.treatment, r.holdout):
                kept.append(
                    (
                        j.id,
                        g.group,
                        r.window_days,
                        g.accounts,
                        g.pending,
                        g.judged,
                        g.paying_at_entry,
                        g.still_paying,
                        g.kept_rate,
                        g.mrr_at_entry,
                        g.mrr_after,
                        g.net_mrr_retained,
                    )
                )
            kept_lift.append(
                (
                    j.id,
                    r.kept_lift,
                    r.kept_low,
                    r.kept_high,
                    r.nrr_lift,
                    r.nrr_low,
                    r.nrr_high,
                    r.verdict,
                    r.method,
                )
            )
        for c in j.ttv:
            ttv.append(
                (
                    j.id,
                    c.week.isoformat(),
                    c.group,
                    c.people,
                    c.reached,
                    c.median_days,
                    c.p75_days,
                    c.within_7,
                    c.within_14,
                    c.within_30,
                )
            )
    return [
        Sheet("funnel", ("journey", "step", "channel"), FUNNEL_METRICS, funnel),
        Sheet("daily", ("journey", "day"), FUNNEL_METRICS, daily),
        Sheet("lift", ("journey",), LIFT_METRICS, lift),
        Sheet("time_to_value", ("journey", "signup_week", "group"), TTV_METRICS, ttv),
        Sheet("retention", ("journey", "group"), RETENTION_METRICS, kept),
        Sheet("retention_lift", ("journey",), RETENTION_LIFT_METRICS, kept_lift),
        Sheet("surveys", ("journey", "step", "touch"), SURVEY_METRICS, survey),
        Sheet(
            "score_bands",
            ("day", "subject_type"),
            ("green", "yellow", "red"),
            [(b.day.isoformat(), b.subject_type, b.green, b.yellow, b.red) for b in report.bands],
        ),
        Sheet(
            "turned_red",
            ("subject_type", "subject_id"),
            ("value", "previous_band", "day"),
            [
                (t.subject_type, t.subject_id, t.value, t.previous_band, t.day.isoformat())
                for t in report.turned_red
            ],
        ),
        Sheet(
            "top_steps",
            ("journey", "step", "channel"),
            ("sent", "responded", "response_rate"),
            [(t.journey, t.step, t.channel, t.sent, t.responded, t.response_rate) for t in report.top_steps],
        ),
    ]


CSV_COLUMNS = (
    "section",
    "journey",
    "step",
    "channel",
    "day",
    "signup_week",
    "group",
    "subject_type",
    "subject_id",
    "touch",
)


def about_kind(sheet: Sheet, row: tuple[Cell, ...]) -> Cell:
    """The survey kind of a row of the surveys sheet."""
    return row[len(sheet.keys) + sheet.metrics.index("kind")]


def to_csv(report: Report) -> str:
    """One tidy CSV: a row per number (section, what it is about, metric, value); pivot it in any spreadsheet.

    Text cells that a spreadsheet would run as a formula are neutralised (`spreadsheet.cell`)."""
    out = io.StringIO()
    writer = spreadsheet.writer(out, lineterminator="\n")
    writer.writerow((*CSV_COLUMNS, "metric", "value"))
    for sheet in sheets(report):
        for row in sheet.rows:
            about = dict(zip(sheet.keys, row[: len(sheet.keys)], strict=True))
            for metric, value in zip(sheet.metrics, row[len(sheet.keys) :], strict=True):
                if value is None and metric in ENROLLMENT_FIELDS:
                    continue  # not meaningful for this row (entries per step)
                if sheet.name == "surveys" and metric in NOT_FOR_KIND.get(str(about_kind(sheet, row)), ()):
                    continue  # a CSAT step has no promoters, an NPS step no mean score
                cells = [sheet.name, *(about.get(c, "") for c in CSV_COLUMNS[1:])]
                writer.writerow((*cells, metric, "" if value is None else value))
    return out.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Period):
        return {"start": value.start.isoformat(), "end": value.end.isoformat()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(report: Report) -> dict[str, Any]:
    """The whole report as JSON-ready data (rates as fractions, dates as ISO strings)."""
    doc: dict[str, Any] = _plain(dataclasses.asdict(report))
    doc["period"] = _plain(report.period)
    for journey, data in zip(report.journeys, doc["journeys"], strict=True):
        data["conversion_rate"] = journey.conversion_rate
        for step, step_data in zip(journey.steps, data["steps"], strict=True):
            step_data["conversion_rate"] = step.conversion_rate
            for name in ENROLLMENT_FIELDS:
                del step_data["counts"][name]
        for day, day_data in zip(journey.daily, data["daily"], strict=True):
            day_data["conversion_rate"] = day.conversion_rate
        if journey.retention is not None:
            for name in ("treatment", "holdout"):
                group = getattr(journey.retention, name)
                data["retention"][name] |= {
                    "judged": group.judged,
                    "kept_rate": group.kept_rate,
                    "net_mrr_retained": group.net_mrr_retained,
                }
        for figures, survey_data in zip(journey.surveys, data["surveys"], strict=True):
            survey_data["response_rate"] = figures.response_rate
    return doc
