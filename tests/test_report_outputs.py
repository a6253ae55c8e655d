"""`engagement report`: the CSV and the JSON parse back to the numbers the table shows; the digest mails them."""

from __future__ import annotations

import csv
import io
import json
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from engine_world import World
from report_world import JOURNEY, seed

from engagement.clock import ManualClock, parse_instant
from engagement.reports import digest
from engagement.reports.model import COUNT_FIELDS
from engagement.reports.sheets import ALL_STEPS, CSV_COLUMNS
from engagement.reports.tables import display
from engagement.running import jobs
from engagement.store import schema

RANGE = ("--from", "2026-03-01", "--to", "2026-03-07", "--now", "2026-03-08T06:00:00Z")


@pytest.fixture
def seeded(world: World) -> World:
    world.journey(JOURNEY)
    seed(world.db)
    return world


def _run(world: World, *args: str) -> str:
    result = world.cli("report", *RANGE, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _csv(world: World) -> dict[tuple[str, ...], str]:
    rows = list(csv.DictReader(io.StringIO(_run(world, "--format", "csv"))))
    assert rows, "the CSV has no rows"
    everything = {(*(r[c] for c in CSV_COLUMNS), r["metric"]) for r in rows}
    assert len(everything) == len(rows), "two CSV rows claim the same number"
    return {
        (r["section"], r["journey"], r["step"], r["day"], r["signup_week"], r["group"], r["metric"]): r[
            "value"
        ]
        for r in rows
        if r["section"] not in ("score_bands", "turned_red", "top_steps")
    }


def _number(text: str) -> int | float | None:
    if text == "":
        return None
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _table_rows(text: str, title: str) -> tuple[list[str], list[list[str]]]:
    """The header and body cells of the Rich table printed under `title`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    header: list[str] = []
    body: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("┃"):
            header = [c.strip() for c in line.strip("┃").split("┃")]
        elif line.startswith("│"):
            body.append([c.strip() for c in line.strip("│").split("│")])
        elif line.startswith("└"):
            break
    return header, body


def test_the_csv_and_the_json_hold_the_same_numbers(seeded: World) -> None:
    found = _csv(seeded)
    doc = json.loads(_run(seeded, "--format", "json"))
    [onb] = [j for j in doc["journeys"] if j["id"] == "onb"]

    assert onb["totals"]["entered"] == 14 and onb["totals"]["unique_opens"] == 4  # the hand-computed world
    for metric in COUNT_FIELDS:
        assert _number(found[("funnel", "onb", ALL_STEPS, "", "", "", metric)]) == onb["totals"][metric], (
            metric
        )
    for step in onb["steps"]:
        for metric, value in step["counts"].items():
            assert _number(found[("funnel", "onb", step["step"], "", "", "", metric)]) == value, (
                step,
                metric,
            )
        assert (
            _number(found[("funnel", "onb", step["step"], "", "", "", "conversion_rate")])
            == step["conversion_rate"]
        )
    for day in onb["daily"]:
        for metric, value in day["counts"].items():
            assert _number(found[("daily", "onb", "", day["day"], "", "", metric)]) == value
    names = {"absolute_lift": "absolute", "relative_lift": "relative", "ci95_low": "low", "ci95_high": "high"}
    for metric, key in {**names, "treated": "treated", "holdout_rate": "holdout_rate"}.items():
        assert _number(found[("lift", "onb", "", "", "", "", metric)]) == onb["lift"][key]
    assert found[("lift", "onb", "", "", "", "", "verdict")] == onb["lift"]["verdict"]
    for cohort in onb["ttv"]:
        key = ("time_to_value", "onb", "", "", cohort["week"], cohort["group"])
        assert _number(found[(*key, "median_days")]) == cohort["median_days"]
        assert _number(found[(*key, "within_14d")]) == cohort["within_14"]


def test_the_terminal_table_shows_the_csv_numbers(seeded: World, tmp_path: Path) -> None:
    found = _csv(seeded)
    out = tmp_path / "report.txt"
    _run(seeded, "--format", "table", "--out", str(out))
    text = out.read_text()

    header, body = _table_rows(text, "Onboarding (onb)")
    assert header[0] == "metric" and header[1] == "all steps"
    steps = [ALL_STEPS, *header[2:]]
    assert {row[0] for row in body} == {*COUNT_FIELDS, "conversion_rate"}
    for row in body:
        metric = row[0]
        for step, cell in zip(steps, row[1:], strict=True):
            value = found.get(("funnel", "onb", step, "", "", "", metric))
            assert cell == display(metric, _number(value) if value is not None else None), (step, metric)
    lift_header, lift_rows = _table_rows(text, "onb: outcome evidence")
    assert lift_header == ["metric", "value"]
    for metric, cell in lift_rows:
        if cell and not metric:
            continue  # a wrapped verdict
        value = found[("lift", "onb", "", "", "", "", metric)]
        shown = display(metric, value if metric == "verdict" else _number(value))
        assert shown.startswith(cell), metric


def test_a_report_for_an_unknown_journey_names_the_known_ones(seeded: World) -> None:
    result = seeded.cli("report", *RANGE, "--journey", "nope")

    assert result.exit_code != 0
    assert "no journey 'nope'" in str(result.exception) and "onb" in str(result.exception)


def test_the_html_file_is_self_contained_with_a_chart_per_section(seeded: World, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    _run(seeded, "--format", "html", "--out", str(out))
    page = out.read_text()

    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for kind in ("funnel", "daily", "lift", "ttv", "bands"):
        assert f'data-chart="{kind}"' in page, kind
    assert "Newcombe" in page


def _digest_world(world: World, recipients: list[str], weekday: str = "mon") -> None:
    world.configure(
        f'[reports]\ndigest_recipients = {json.dumps(recipients)}\ndigest_weekday = "{weekday}"\n'
        '[server]\npublic_url = "https://engage.example.com"\n'
    )


def _outbox(world: World) -> list[Any]:
    folder = world.root / "outbox"
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]


def test_the_weekly_digest_mails_each_recipient_once_a_week_with_a_dashboard_link(seeded: World) -> None:
    _digest_world(seeded, ["ana@chartwell.example", "bo@chartwell.example"], weekday="fri")
    thursday = ManualClock(parse_instant("2026-03-05T09:00:00Z"))
    saturday = ManualClock(parse_instant("2026-03-07T09:00:00Z"))

    assert digest.send_digest(seeded.settings, seeded.db, thursday) == 0  # before the configured weekday
    assert digest.send_digest(seeded.settings, seeded.db, saturday) == 2
    assert digest.send_digest(seeded.settings, seeded.db, saturday) == 0  # already sent this week
    messages = _outbox(seeded)
    assert sorted(str(m["To"]) for m in messages) == ["ana@chartwell.example", "bo@chartwell.example"]
    text = messages[0].get_body(preferencelist=("plain",)).get_content()
    assert "https://engage.example.com/reports" in text
    assert "Onboarding (onb)" in text and "nohold (nohold)" in text  # a journey without a file shows its id
    assert "Retention in 2026-02: GRR n/a, NRR n/a" in text  # the month before; this world has no revenue
    assert "entered 14" in text and "unique opens 4" in text and "conversions 4" in text
    assert seeded.count(schema.digest_sends) == 2


def test_report_digest_sends_now_whatever_the_day(seeded: World) -> None:
    _digest_world(seeded, ["ana@chartwell.example"])

    result = seeded.cli("report", "--digest", "--now", "2026-03-08T06:00:00Z")

    assert result.exit_code == 0, result.output
    assert "sent the weekly digest to 1 recipient(s)" in result.stdout
    [message] = _outbox(seeded)
    assert str(message["Subject"]).startswith("Engagement digest 2026-W10")


def test_the_scheduler_runs_the_digest_daily_and_it_goes_out_once_a_week(seeded: World) -> None:
    _digest_world(seeded, ["ana@chartwell.example"], weekday="fri")
    assert {job.id for job in jobs.JOBS} >= {"tick", "in-doubt-sweep", "score-snapshot", "weekly-digest"}

    sent = [
        jobs.weekly_digest(seeded.engine, parse_instant(f"2026-03-{day:02d}T08:00:00Z"))["sent"]
        for day in range(4, 12)  # Wednesday 4 March to Wednesday 11 March
    ]

    assert sent == [0, 0, 1, 0, 0, 0, 0, 0]  # the first run on or after Friday, then nothing until next week
    assert len(_outbox(seeded)) == 1


def test_the_scheduler_snapshots_every_score_once_a_day(seeded: World) -> None:
    contacts, accounts = seeded.count(schema.contacts), seeded.count(schema.accounts)
    morning, evening = parse_instant("2026-03-09T00:15:00Z"), parse_instant("2026-03-09T23:00:00Z")

    assert jobs.score_snapshot(seeded.engine, morning) == {"rows": contacts + accounts}
    assert jobs.score_snapshot(seeded.engine, evening) == {
        "rows": contacts + accounts
    }  # replaces the day's rows
    day = morning.date()
    assert seeded.count(schema.score_snapshots, schema.score_snapshots.c.day == day) == contacts + accounts
