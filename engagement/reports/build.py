"""Assemble a Report from the set-based queries: sums of days into steps, steps into journeys."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from engagement.conditions import ast
from engagement.config import Settings
from engagement.errors import NotFoundError
from engagement.journeys import catalog as catalogs
from engagement.journeys.catalog import Catalog
from engagement.reports import journey_retention, queries, stats, surveys
from engagement.reports.model import (
    BandDay,
    Counts,
    DayCounts,
    JourneyReport,
    Lift,
    Report,
    StepCounts,
    TopStep,
    TtvCohort,
    TurnedRed,
)
from engagement.reports.period import Period
from engagement.store import schema
from engagement.store.database import Database

DELIVERY_FIELDS = (
    "sent",
    "delivered",
    "held_cap",
    "held_window",
    "skipped_late",
    "suppressed",
    "in_doubt",
    "failed",
)
TTV_WINDOWS = (7, 14, 30)
TOP_STEPS = 10


@dataclass(frozen=True)
class JourneyInfo:
    """What a report needs from a journey file."""

    id: str
    name: str
    audience: str
    goal: ast.Condition | None
    surveys: tuple[tuple[str, str], ...] = ()  # (step id, kind) of each survey step


def infos(catalog: Catalog | None) -> dict[str, JourneyInfo]:
    """Journey facts from a loaded catalog (empty without one)."""
    if catalog is None:
        return {}
    return {
        j.id: JourneyInfo(j.id, j.spec.name, j.audience, j.goal, tuple(surveys.survey_steps(j.spec.steps)))
        for j in catalog.journeys.values()
    }


def infos_from_settings(settings: Settings) -> dict[str, JourneyInfo]:
    """Journey facts from the configured journey files (files with problems are left out)."""
    return infos(catalogs.load([settings.path(settings.journeys.dir)], settings))


def goal_milestone(goal: ast.Condition | None) -> str | None:
    """The milestone that time-to-value measures: the goal itself, or the one milestone of an `all` goal."""
    if isinstance(goal, ast.Milestone):
        return goal.name
    if isinstance(goal, ast.All):
        found = [item.name for item in goal.items if isinstance(item, ast.Milestone)]
        return found[0] if len(found) == 1 else None
    return None


def build(
    db: Database,
    known: dict[str, JourneyInfo],
    period: Period,
    now: datetime,
    *,
    journey: str | None = None,
    min_sample: int = 30,
    retention_window: timedelta = timedelta(days=90),
) -> Report:
    """The report for every journey (or one) over `period`; retention is judged `retention_window` after entry."""
    only = [journey] if journey is not None else None
    with db.begin() as conn:
        recorded = {row.id: row.name for row in conn.execute(schema.journeys.select())}
        if journey is not None and journey not in known and journey not in recorded:
            enrolled = set(conn.execute(select(schema.enrollments.c.journey_id).distinct()).scalars())
            if journey not in enrolled:
                names = ", ".join(sorted(set(known) | set(recorded) | enrolled)) or "none"
                raise NotFoundError(f"no journey {journey!r} (known: {names})")
        delivery_rows = queries.deliveries(conn, period, only)
        conversion_rows = queries.step_conversions(conn, period, only)
        response_rows = queries.responses(conn, period, only)
        entry_rows = queries.entries(conn, period, only)
        ids = sorted(
            set(only or [])
            or set(known)
            | {r["journey_id"] for r in (*delivery_rows, *entry_rows)}
            | {r.journey_id for r in response_rows[0]}
        )
        infos_by_id = {j: known.get(j) or JourneyInfo(j, recorded.get(j) or j, "contact", None) for j in ids}
        ttv = {
            j: _ttv(queries.time_to_value(conn, period, j, info.audience, milestone))
            for j, info in infos_by_id.items()
            if (milestone := goal_milestone(info.goal)) is not None
        }
        survey_figures = surveys.figures(
            conn, period, only, {j: list(info.surveys) for j, info in infos_by_id.items()}
        )
        kept = journey_retention.retention(conn, period, ids, retention_window, now, min_sample)
        band_rows = queries.bands(conn, period)
        latest, red_rows = queries.turned_red(conn, period)
    journeys = _journeys(
        infos_by_id, period, (delivery_rows, conversion_rows, response_rows, entry_rows), ttv, min_sample
    )
    for made in journeys:
        made.retention = kept[made.id]
        made.surveys = survey_figures.get(made.id, [])
    return Report(
        period=period,
        generated_at=now,
        journeys=journeys,
        bands=_bands(band_rows),
        turned_red=[
            TurnedRed(r.subject_type, r.subject_id, float(r.value), r.previous_band, latest)
            for r in red_rows
            if latest is not None
        ],
        top_steps=_top_steps(journeys),
        min_sample=min_sample,
    )


def _journeys(
    infos_by_id: dict[str, JourneyInfo],
    period: Period,
    rows: tuple[
        list[dict[str, Any]], list[Any], tuple[list[Any], list[dict[str, Any]]], list[dict[str, Any]]
    ],
    ttv: dict[str, list[TtvCohort]],
    min_sample: int,
) -> list[JourneyReport]:
    delivery_rows, conversion_rows, (response_totals, response_days), entry_rows = rows
    steps: dict[str, dict[tuple[str, str], Counts]] = defaultdict(dict)
    days: dict[str, dict[date, Counts]] = defaultdict(lambda: defaultdict(Counts))
    entrants: dict[str, Counts] = defaultdict(Counts)
    channels: dict[tuple[str, str], str] = {}
    for row in delivery_rows:
        step = steps[row["journey_id"]].setdefault((row["step_id"], row["channel"]), Counts())
        day = days[row["journey_id"]][date.fromisoformat(row["day"])]
        channels[(row["journey_id"], row["step_id"])] = row["channel"]
        if row["channel"] != "email":  # a nudge or webhook is delivered when it is sent
            row = {**row, "delivered": row.get("sent", 0)}
        for name in DELIVERY_FIELDS:
            value = int(row.get(name) or 0)
            setattr(step, name, getattr(step, name) + value)
            setattr(day, name, getattr(day, name) + value)
    for row in conversion_rows:  # per step only: a journey's conversions are its entrants', counted below
        steps[row.journey_id].setdefault((row.step_id, row.channel), Counts()).conversions += int(
            row.conversions
        )
    for row in response_totals:
        name = queries.RESPONSE_FIELDS[row.kind]
        channel = channels.get((row.journey_id, row.step_id)) or _channel_of(row.kind)
        step = steps[row.journey_id].setdefault((row.step_id, channel), Counts())
        setattr(step, name, getattr(step, name) + int(row.n))
    for item in response_days:  # distinct per day: a message opened on two days counts on both
        name = queries.RESPONSE_FIELDS[item["kind"]]
        day = days[item["journey_id"]][date.fromisoformat(item["day"])]
        setattr(day, name, getattr(day, name) + int(item["n"]))
    treated: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    held_out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in entry_rows:
        journey_id, entered, converted = (
            item["journey_id"],
            int(item["entered"]),
            int(item["conversions"] or 0),
        )
        for counts in (days[journey_id][date.fromisoformat(item["day"])], entrants[journey_id]):
            counts.entered += entered
            counts.holdout += entered if item["holdout"] else 0
            # a day's conversions are its entrants' (so a day's rate means something); steps count their recipients'
            counts.conversions += converted
        group = held_out if item["holdout"] else treated
        group[journey_id][0] += entered
        group[journey_id][1] += converted
    reports = []
    for journey_id, info in infos_by_id.items():
        by_day = days.get(journey_id, {})
        totals = Counts()
        for counts in steps.get(journey_id, {}).values():
            totals.add(counts)
        totals.entered, totals.holdout = entrants[journey_id].entered, entrants[journey_id].holdout
        totals.conversions = entrants[journey_id].conversions
        milestone = goal_milestone(info.goal)
        reports.append(
            JourneyReport(
                id=journey_id,
                name=info.name,
                audience=info.audience,
                goal_milestone=milestone,
                totals=totals,
                steps=[
                    StepCounts(step, channel, counts)
                    for (step, channel), counts in sorted(steps.get(journey_id, {}).items())
                ],
                daily=[DayCounts(day, by_day.get(day, Counts())) for day in period.days()],
                lift=_lift(treated[journey_id], held_out[journey_id], min_sample)
                if info.goal is not None or treated[journey_id][1] + held_out[journey_id][1]
                else None,
                ttv=ttv.get(journey_id, []),
                ttv_note=_ttv_note(info, milestone),
            )
        )
    return reports


def _channel_of(kind: str) -> str:
    return "in_app" if kind in ("seen", "clicked", "dismissed") else "email"


def _ttv_note(info: JourneyInfo, milestone: str | None) -> str:
    if milestone is not None:
        return f"days from signup to the goal milestone {milestone!r}"
    if info.goal is None:
        return "no goal: time-to-value needs a journey goal"
    return "the goal is not a milestone condition, so there is no single milestone to time"


def _lift(treated: list[int], held_out: list[int], min_sample: int) -> Lift:
    (n1, x1), (n2, x2) = treated, held_out
    p1 = x1 / n1 if n1 else None
    p2 = x2 / n2 if n2 else None
    interval = stats.newcombe(x1, n1, x2, n2) if n1 and n2 else None
    absolute = p1 - p2 if p1 is not None and p2 is not None else None
    return Lift(
        treated=n1,
        treated_converted=x1,
        holdout=n2,
        holdout_converted=x2,
        treated_rate=p1,
        holdout_rate=p2,
        absolute=absolute,
        relative=absolute / p2 if absolute is not None and p2 else None,
        low=interval.low if interval else None,
        high=interval.high if interval else None,
        method=stats.METHOD,
        verdict=stats.verdict(n1, n2, interval, min_sample),
    )


def _ttv(rows: list[Any]) -> list[TtvCohort]:
    """Weekly signup cohorts (weeks start on Monday) per group."""
    found: dict[tuple[str, bool], list[float | None]] = defaultdict(list)
    for week, holdout, days in rows:  # one row per subject: keep this loop lean
        found[(week, bool(holdout))].append(None if days is None else max(0.0, float(days)))
    groups = {
        (date.fromisoformat(week), "holdout" if holdout else "treatment"): values
        for (week, holdout), values in found.items()
    }
    cohorts = []
    for (week, group), values in sorted(groups.items()):
        reached = sorted(v for v in values if v is not None)
        people = len(values)
        cohorts.append(
            TtvCohort(
                week=week,
                group=group,
                people=people,
                reached=len(reached),
                median_days=stats.quantile(reached, 0.5),
                p75_days=stats.quantile(reached, 0.75),
                within_7=sum(v <= 7 for v in reached) / people,
                within_14=sum(v <= 14 for v in reached) / people,
                within_30=sum(v <= 30 for v in reached) / people,
            )
        )
    return cohorts


def _bands(rows: list[Any]) -> list[BandDay]:
    found: dict[tuple[date, str], BandDay] = {}
    for row in rows:
        day = row.day if isinstance(row.day, date) else date.fromisoformat(str(row.day))
        entry = found.setdefault((day, row.subject_type), BandDay(day, row.subject_type))
        if row.band in ("green", "yellow", "red"):
            setattr(entry, row.band, getattr(entry, row.band) + int(row.n))
    return [found[k] for k in sorted(found)]


def _top_steps(journeys: list[JourneyReport]) -> list[TopStep]:
    ranked = []
    for journey in journeys:
        for step in journey.steps:
            responded = step.counts.unique_clicks + step.counts.nudges_clicked
            if step.counts.sent:
                ranked.append(
                    TopStep(
                        journey.id,
                        step.step,
                        step.channel,
                        step.counts.sent,
                        responded,
                        responded / step.counts.sent,
                    )
                )
    ranked.sort(key=lambda s: (-s.response_rate, -s.sent, s.journey, s.step))
    return ranked[:TOP_STEPS]


def _options(settings: Settings) -> dict[str, Any]:
    return {"min_sample": settings.reports.min_sample, "retention_window": settings.reports.retention_window}


def for_settings(
    settings: Settings,
    db: Database,
    period: Period,
    now: datetime,
    *,
    journey: str | None = None,
    explicit: bool = True,
) -> Report:
    """The report with journey names and goals read from the configured journey files.

    Files with problems are left out of the names (the report still shows what the database holds).
    When the period was not chosen (`explicit` False) and nothing happened in it, the report covers
    the same span up to the latest recorded activity instead, and says so in its note. A range that
    starts before the first recorded day is shown from that day (its numbers are the same), so any range
    costs what the recorded days cost.
    """
    found = infos_from_settings(settings)
    with db.begin() as conn:
        first = queries.first_activity(conn)
    note = "The range starts before anything was recorded; it is shown from the first recorded day ({})."
    if first is None:
        first, note = datetime.combine(period.last_day, time(), UTC), "Nothing has been recorded yet."
    if period.start < first < period.end:
        # nothing before `first` to count: a range back to the year 1 costs what the recorded days cost
        clipped = Period(first, period.end)
        made = build(db, found, clipped, now, journey=journey, **_options(settings))
        made.note = note.format(first.date().isoformat())
        return made
    made = build(db, found, period, now, journey=journey, **_options(settings))
    if explicit or any(j.totals.entered or j.totals.sent for j in made.journeys):
        return made
    with db.begin() as conn:
        latest = queries.latest_activity(conn)
    if latest is None or latest >= period.start:
        return made
    end = datetime.combine(latest.date() + timedelta(days=1), time(), UTC)
    moved = Period(end - (period.end - period.start), end)
    made = build(db, found, moved, now, journey=journey, **_options(settings))
    made.note = (
        f"Nothing happened in the last {(period.end - period.start).days} days; this shows the same span up to "
        f"the latest recorded activity ({latest.date().isoformat()})."
    )
    return made
