"""Every number of a report, checked against a hand-built week (tests/report_world.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from backends import url_for
from report_world import KNOWN, NOW, PERIOD, seed

from engagement.reports import build, stats
from engagement.reports.model import BandDay, Counts, Report
from engagement.store import database, schema


@pytest.fixture(scope="module")
def report(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    """The hand-built week, reported, on each backend."""
    folder = tmp_path_factory.mktemp("reports") if backend == "sqlite" else None
    db = database.Database(url_for(backend, folder))
    schema.metadata.drop_all(db.engine)
    db.create_all()
    try:
        seed(db)
        yield build.build(db, KNOWN, PERIOD, NOW, min_sample=30)
    finally:
        schema.metadata.drop_all(db.engine)
        db.dispose()


def test_the_journey_funnel_counts_every_stage_once(report: Report) -> None:
    assert report.journey("onb").totals == Counts(
        entered=14,
        holdout=4,
        sent=12,  # 8 welcome emails + 4 nudges; the in-doubt and late ones were never sent
        delivered=10,  # 6 email `delivered` events + 4 nudges placed in the inbox
        unique_opens=4,  # c1 (ten opens), c2 (two), c3, c7; c8's open is after the period
        unique_clicks=1,
        nudges_seen=3,
        nudges_clicked=1,
        nudges_dismissed=1,
        unsubscribes=2,  # unsubscribe and group_unsubscribe
        bounces=1,
        complaints=1,
        held_cap=1,
        held_window=1,
        skipped_late=1,
        suppressed=1,
        in_doubt=1,
        failed=1,
        conversions=4,  # c1, c2, c7 and h1; c0 entered before the period
    )
    assert report.journey("onb").conversion_rate == pytest.approx(4 / 14)


def test_a_contact_opening_one_email_ten_times_is_one_unique_open(report: Report) -> None:
    [welcome] = [s for s in report.journey("onb").steps if s.step == "welcome"]

    assert welcome.counts.unique_opens == 4
    assert welcome.counts.sent == 8


def test_each_step_has_its_own_funnel_and_recipient_conversions(report: Report) -> None:
    steps = {s.step: s for s in report.journey("onb").steps}

    assert sorted(steps) == ["followup", "nudge", "welcome"]
    welcome, nudge, followup = steps["welcome"], steps["nudge"], steps["followup"]
    assert (welcome.channel, welcome.counts.delivered, welcome.counts.bounces) == ("email", 6, 1)
    assert (welcome.counts.complaints, welcome.counts.unsubscribes, welcome.counts.unique_clicks) == (1, 2, 1)
    assert (welcome.counts.in_doubt, welcome.counts.skipped_late) == (1, 1)
    assert welcome.counts.conversions == 3 and welcome.conversion_rate == pytest.approx(3 / 8)
    assert (nudge.channel, nudge.counts.sent, nudge.counts.delivered) == ("in_app", 4, 4)
    assert (nudge.counts.nudges_seen, nudge.counts.nudges_clicked, nudge.counts.nudges_dismissed) == (3, 1, 1)
    assert nudge.counts.conversions == 2 and nudge.conversion_rate == pytest.approx(0.5)
    assert followup.counts == Counts(held_cap=1, held_window=1, suppressed=1, failed=1)
    assert followup.conversion_rate is None  # zero sends: no rate, not 0%


def test_the_daily_series_adds_up_to_the_totals_except_repeat_responses_on_later_days(report: Report) -> None:
    onb = report.journey("onb")
    by_day = {d.day.day: d.counts for d in onb.daily}

    assert [d.day for d in onb.daily] == [date(2026, 3, day) for day in range(1, 8)]
    assert by_day[2] == Counts(
        entered=10, holdout=4, sent=6, delivered=6, unique_opens=2, bounces=1, conversions=3
    )
    assert by_day[3] == Counts(
        entered=4,
        sent=2,
        unique_opens=2,
        unique_clicks=1,
        complaints=1,
        unsubscribes=2,
        in_doubt=1,
        skipped_late=1,
        conversions=1,
    )
    # w2 was opened on the 2nd and again on the 4th: a unique open on each day, one in the total
    assert by_day[4] == Counts(
        sent=4, delivered=4, unique_opens=1, nudges_seen=2, nudges_clicked=1, nudges_dismissed=1
    )
    assert by_day[5] == Counts(nudges_seen=1, held_cap=1, held_window=1, suppressed=1, failed=1)
    assert by_day[1] == by_day[6] == by_day[7] == Counts()
    total = Counts()
    for counts in by_day.values():
        total.add(counts)
    assert total.unique_opens == onb.totals.unique_opens + 1
    total.unique_opens -= 1
    assert total == onb.totals


def test_the_lift_compares_treatment_with_holdout_and_holds_back_a_verdict_on_small_samples(
    report: Report,
) -> None:
    lift = report.journey("onb").lift
    assert lift is not None

    assert (lift.treated, lift.treated_converted, lift.holdout, lift.holdout_converted) == (10, 3, 4, 1)
    assert lift.treated_rate == pytest.approx(0.3) and lift.holdout_rate == pytest.approx(0.25)
    assert lift.absolute == pytest.approx(0.05) and lift.relative == pytest.approx(0.2)
    expected = stats.newcombe(3, 10, 1, 4)
    assert (lift.low, lift.high) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert lift.low is not None and lift.low < 0 < lift.high  # type: ignore[operator]
    assert lift.verdict.startswith("not enough data yet")
    assert "Newcombe" in lift.method and "Wilson" in lift.method


def test_a_journey_without_a_holdout_says_so_and_has_no_interval(report: Report) -> None:
    lift = report.journey("nohold").lift
    assert lift is not None

    assert (lift.treated, lift.treated_converted, lift.holdout) == (3, 1, 0)
    assert lift.holdout_rate is None and lift.absolute is None and lift.low is None and lift.high is None
    assert lift.verdict.startswith("no holdout")
    assert report.journey("nohold").totals.sent == 0 and report.journey("nohold").steps == []


def test_time_to_value_by_weekly_signup_cohort_in_each_group(report: Report) -> None:
    cohorts = {(c.week, c.group): c for c in report.journey("onb").ttv}

    assert sorted(cohorts) == [
        (date(2026, 2, 23), "treatment"),
        (date(2026, 3, 2), "holdout"),
        (date(2026, 3, 2), "treatment"),
    ]
    week = cohorts[(date(2026, 3, 2), "treatment")]  # reached after 3, 10 and 20 days; 3 never did
    assert (week.people, week.reached, week.median_days, week.p75_days) == (6, 3, 10.0, 15.0)
    assert (week.within_7, week.within_14, week.within_30) == pytest.approx((1 / 6, 2 / 6, 3 / 6))
    early = cohorts[(date(2026, 2, 23), "treatment")]
    assert (early.people, early.reached, early.median_days, early.p75_days) == (4, 1, 10.0, 10.0)
    assert (early.within_7, early.within_14, early.within_30) == (0.0, 0.25, 0.25)
    held = cohorts[(date(2026, 3, 2), "holdout")]  # exactly 7 days counts as within 7
    assert (held.people, held.reached, held.median_days, held.within_7, held.within_30) == (
        4,
        1,
        7.0,
        0.25,
        0.25,
    )
    [nobody] = report.journey("nohold").ttv
    assert (nobody.people, nobody.reached, nobody.median_days, nobody.within_30) == (3, 0, None, 0.0)


def test_score_bands_by_day_and_who_turned_red_this_week(report: Report) -> None:
    assert report.bands == [
        BandDay(date(2026, 3, 1), "contact", green=1),
        BandDay(date(2026, 3, 7), "account", red=1),
        BandDay(date(2026, 3, 7), "contact", green=1, red=4),
    ]
    moved = [(t.subject_type, t.subject_id, t.previous_band, t.day) for t in report.turned_red]
    assert moved == [
        ("account", "a1", "yellow", date(2026, 3, 7)),
        ("contact", "s1", "green", date(2026, 3, 7)),
        ("contact", "s3", "yellow", date(2026, 3, 7)),
    ]


def test_top_steps_rank_by_clicks_per_message_sent(report: Report) -> None:
    assert [(t.step, t.sent, t.responded, t.response_rate) for t in report.top_steps] == [
        ("nudge", 4, 1, 0.25),
        ("welcome", 8, 1, 0.125),
    ]


def test_an_empty_database_reports_zeros_without_dividing_by_zero(tmp_path: Path) -> None:
    db = database.Database(f"sqlite:///{tmp_path / 'empty.db'}")
    db.create_all()

    empty = build.build(db, KNOWN, PERIOD, NOW)

    onb = empty.journey("onb")
    assert onb.totals == Counts() and onb.conversion_rate is None and onb.ttv == []
    assert (
        onb.lift is not None and onb.lift.treated_rate is None and onb.lift.verdict.startswith("no holdout")
    )
    assert empty.bands == [] and empty.turned_red == [] and empty.top_steps == []
