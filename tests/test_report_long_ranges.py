"""`engagement report --since 3650d`: ten years of data, every format, the numbers counted independently."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_world import World
from report_world import JOURNEY
from sqlalchemy import insert
from test_report_outputs import _table_rows

from engagement.reports.sheets import ALL_STEPS
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")
NOW = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
SINCE = "3650d"
START = NOW - timedelta(days=3650)
PEOPLE = 300  # one entry every 13 days and 5 hours: 3,975 days back, so the oldest fall outside the range


@dataclass(frozen=True)
class Person:
    """One seeded enrollment with its welcome email and the responses to it."""

    n: int
    entered: datetime
    holdout: bool
    converted: bool
    opens: tuple[datetime, ...]
    clicks: tuple[datetime, ...]

    @property
    def sent(self) -> datetime | None:
        return None if self.holdout else self.entered + timedelta(hours=1)


def _people() -> list[Person]:
    found = []
    for n in range(PEOPLE):
        entered = NOW - timedelta(days=13 * n, hours=5 * n, minutes=7)
        holdout, sent = n % 10 == 0, entered + timedelta(hours=1)
        opens: tuple[datetime, ...] = ()
        if not holdout and n % 3 == 0:
            opens = (sent + timedelta(hours=2), sent + timedelta(hours=3))  # two opens: one unique
        if not holdout and n % 6 == 0:
            opens += (sent + timedelta(days=1),)  # and one the next day: unique on each day
        clicks = (sent + timedelta(hours=2, minutes=5),) if opens and n % 5 == 0 else ()
        found.append(Person(n, entered, holdout, n % 4 == 0, opens, clicks))
    return [p for p in found if p.sent is None or p.sent < NOW]


def _seed(world: World, people: list[Person]) -> None:
    contacts = [
        {"id": f"p{p.n}", "account_id": "acme", "email": f"p{p.n}@x.example", "created_at": p.entered}
        for p in people
    ]
    enrollments = [
        {
            "id": p.n + 1,
            "journey_id": "onb",
            "subject_id": f"p{p.n}",
            "account_id": "acme",
            "holdout": p.holdout,
            "state": "ended" if p.converted else "active",
            "outcome": "converted" if p.converted else None,
            "entered_at": p.entered,
        }
        for p in people
    ]
    deliveries = [
        {
            "id": f"d{p.n}",
            "enrollment_id": p.n + 1,
            "journey_id": "onb",
            "step_id": "welcome",
            "channel": "email",
            "recipient": f"p{p.n}",
            "contact_id": f"p{p.n}",
            "status": "sent",
            "due_at": p.sent,
            "created_at": p.sent,
            "updated_at": p.sent,
            "sent_at": p.sent,
        }
        for p in people
        if p.sent is not None
    ]
    responses = [
        {
            "delivery_id": f"d{p.n}",
            "contact_id": f"p{p.n}",
            "journey_id": "onb",
            "step_id": "welcome",
            "kind": kind,
            "occurred_at": when,
            "data": {},
        }
        for p in people
        for kind, times in (("open", p.opens), ("click", p.clicks))
        for when in times
    ]
    with world.db.begin() as conn:
        conn.execute(insert(schema.accounts), [{"id": "acme", "name": "Acme", "signed_up_at": START}])
        conn.execute(insert(schema.contacts), contacts)
        conn.execute(insert(schema.enrollments), enrollments)
        conn.execute(insert(schema.deliveries), deliveries)
        conn.execute(insert(schema.responses), responses)


def _inside(when: datetime | None) -> bool:
    return when is not None and START <= when < NOW


def _expected(people: list[Person]) -> tuple[dict[str, int], dict[str, Counter[str]]]:
    """The totals and the per-day numbers, counted from the seeded rows (not through any SQL)."""
    entrants = [p for p in people if _inside(p.entered)]
    sent = [p for p in people if _inside(p.sent)]
    totals = {
        "entered": len(entrants),
        "holdout": sum(p.holdout for p in entrants),
        "conversions": sum(p.converted for p in entrants),
        "sent": len(sent),
        "unique_opens": sum(any(_inside(t) for t in p.opens) for p in people),
        "unique_clicks": sum(any(_inside(t) for t in p.clicks) for p in people),
    }
    daily: dict[str, Counter[str]] = {name: Counter() for name in totals}
    for p in entrants:
        daily["entered"][p.entered.date().isoformat()] += 1
        daily["holdout"][p.entered.date().isoformat()] += p.holdout
        daily["conversions"][p.entered.date().isoformat()] += p.converted
    for p in sent:
        assert p.sent is not None
        daily["sent"][p.sent.date().isoformat()] += 1
    for p in people:
        for name, times in (("unique_opens", p.opens), ("unique_clicks", p.clicks)):
            for day in {t.date().isoformat() for t in times if _inside(t)}:
                daily[name][day] += 1
    return totals, daily


@pytest.fixture
def decade(world: World) -> tuple[World, dict[str, int], dict[str, Counter[str]]]:
    world.journey(JOURNEY)
    people = _people()
    _seed(world, people)
    totals, daily = _expected(people)
    # the world spans the range: entries near both ends, and some before it
    assert totals["entered"] > 250 and len(people) > totals["entered"] and totals["unique_opens"] > 50
    return world, totals, daily


def _report(world: World, *args: str) -> str:
    result = world.cli("report", "--since", SINCE, "--now", NOW.isoformat(), *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_ten_year_report_in_json_has_the_numbers_counted_from_the_rows(
    decade: tuple[World, dict[str, int], dict[str, Counter[str]]],
) -> None:
    world, totals, daily = decade
    doc = json.loads(_report(world, "--format", "json"))
    [onb] = [j for j in doc["journeys"] if j["id"] == "onb"]

    assert {name: onb["totals"][name] for name in totals} == totals
    assert len(onb["daily"]) == 3651  # every UTC day the range touches, the partial first and last included
    assert onb["daily"][0]["day"] == START.date().isoformat()
    assert onb["daily"][-1]["day"] == NOW.date().isoformat()
    for name, per_day in daily.items():
        shown = {d["day"]: d["counts"][name] for d in onb["daily"] if d["counts"][name]}
        assert shown == dict(+per_day), name


def test_a_ten_year_report_in_csv_has_the_same_totals_and_days(
    decade: tuple[World, dict[str, int], dict[str, Counter[str]]],
) -> None:
    world, totals, daily = decade
    rows = list(csv.DictReader(io.StringIO(_report(world, "--format", "csv"))))
    funnel = {
        r["metric"]: int(r["value"])
        for r in rows
        if r["section"] == "funnel"
        and r["journey"] == "onb"
        and r["step"] == ALL_STEPS
        and r["metric"] in totals
    }
    assert funnel == totals
    for name, per_day in daily.items():
        shown = {
            r["day"]: int(r["value"])
            for r in rows
            if r["section"] == "daily" and r["journey"] == "onb" and r["metric"] == name and r["value"] != "0"
        }
        assert shown == dict(+per_day), name


def test_a_ten_year_report_as_a_table_and_as_html_shows_the_totals(
    decade: tuple[World, dict[str, int], dict[str, Counter[str]]], tmp_path: Path
) -> None:
    world, totals, _ = decade
    out = tmp_path / "report.txt"
    _report(world, "--format", "table", "--out", str(out))
    header, body = _table_rows(out.read_text(), "Onboarding (onb)")
    cells: dict[str, Any] = {row[0]: row[header.index("all steps")] for row in body}
    for name, value in totals.items():
        assert cells[name] == str(value), name

    page = _report(world, "--format", "html")
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert (
        f"{totals['entered']} entered ({totals['holdout']} in holdout), {totals['sent']} messages sent"
        in page
    )


def test_a_report_over_more_steps_than_one_compound_select_holds_counts_each(world: World) -> None:
    steps = 600  # SQLite allows 500 terms in a compound SELECT; the keys are split into smaller ones
    sent = NOW - timedelta(days=2)
    with world.db.begin() as conn:
        conn.execute(insert(schema.accounts), [{"id": "acme", "name": "Acme", "signed_up_at": START}])
        conn.execute(insert(schema.contacts), [{"id": "p", "account_id": "acme", "email": "p@x.example"}])
        conn.execute(
            insert(schema.deliveries),
            [
                {
                    "id": f"d{i}",
                    "enrollment_id": 1,
                    "journey_id": "onb",
                    "step_id": f"step-{i:03d}",
                    "channel": "email",
                    "recipient": "p",
                    "contact_id": "p",
                    "status": "sent",
                    "due_at": sent,
                    "created_at": sent,
                    "updated_at": sent,
                    "sent_at": sent + timedelta(minutes=i % 60),
                }
                for i in range(steps)
            ],
        )
    result = world.cli("report", "--since", "30d", "--now", NOW.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.output
    [onb] = [j for j in json.loads(result.stdout)["journeys"] if j["id"] == "onb"]
    assert onb["totals"]["sent"] == steps
    assert len(onb["steps"]) == steps and {s["counts"]["sent"] for s in onb["steps"]} == {1}


def test_a_range_back_past_the_first_record_or_the_calendar_shows_everything_from_the_first_day(
    decade: tuple[World, dict[str, int], dict[str, Counter[str]]],
) -> None:
    world, _, _ = decade
    people = _people()
    first = min(p.entered for p in people).date().isoformat()
    for since in ("7300d", "99999999d"):
        result = world.cli("report", "--since", since, "--now", NOW.isoformat(), "--format", "json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        [onb] = [j for j in doc["journeys"] if j["id"] == "onb"]
        assert onb["totals"]["entered"] == len(people)
        assert onb["totals"]["sent"] == sum(p.sent is not None for p in people)
        assert onb["daily"][0]["day"] == first and doc["period"]["start"].startswith(first)
        assert "shown from the first recorded day" in doc["note"]


def test_a_long_range_over_an_empty_database_is_one_quiet_day(world: World) -> None:
    result = world.cli("report", "--since", "99999999d", "--now", NOW.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["note"] == "Nothing has been recorded yet."
    assert doc["period"]["start"] == "2026-03-08T00:00:00+00:00"
