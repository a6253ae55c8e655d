"""`engagement report surveys` lists every answer; `engagement report` shows the survey figures."""

from __future__ import annotations

import csv
import io
import json

import pytest
from engine_world import World
from survey_world import seed

RANGE = ("--from", "2026-03-01", "--to", "2026-03-07", "--now", "2026-03-10T06:00:00Z")


@pytest.fixture
def seeded(world: World) -> World:
    seed(world.db)
    return world


def _run(world: World, *args: str) -> str:
    result = world.cli("report", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_csv_lists_every_answer_with_its_comment_and_no_formula(seeded: World) -> None:
    rows = list(csv.DictReader(io.StringIO(_run(seeded, "surveys", "--format", "csv"))))
    assert len(rows) == 15
    assert list(rows[0]) == [
        "journey",
        "step",
        "contact",
        "account",
        "kind",
        "score",
        "comment",
        "answered_at",
    ]
    by_contact = {(r["contact"], r["score"]): r for r in rows}
    assert by_contact[("t2", "10")]["comment"] == '\'=HYPERLINK("http://x.example")'  # shows as text
    assert by_contact[("t4", "7")]["comment"] == "Fine,\nmostly"
    assert by_contact[("t1", "3")]["answered_at"] == "2026-03-04T10:00:00+00:00"


def test_the_list_narrows_to_a_journey_a_range_a_contact_or_an_account(seeded: World) -> None:
    answers = json.loads(_run(seeded, "surveys", "--format", "json", "--journey", "nps", *RANGE))["answers"]
    assert len(answers) == 10
    assert {a["journey"] for a in answers} == {"nps"}
    t1 = json.loads(_run(seeded, "surveys", "--format", "json", "--contact", "t1"))["answers"]
    assert [(a["step"], a["score"]) for a in t1] == [("nps-day-90", 9), ("csat-ticket", 3), ("nps-day-90", 3)]
    table = _run(seeded, "surveys", "--account", "big-co")
    assert "Survey answers (0)" in table


def test_an_unknown_format_is_refused_by_name(seeded: World) -> None:
    result = seeded.cli("report", "surveys", "--format", "html")
    assert result.exit_code != 0
    assert "--format: 'html' is not one of table, csv, json" in str(result.exception)


def test_the_report_table_shows_each_survey_step_by_touch_tier(seeded: World) -> None:
    text = _run(seeded, *RANGE)
    nps = text[text.index("nps: NPS survey nps-day-90 by touch tier") :]
    nps = nps[: nps.index("└")]
    cells = [
        [c.strip() for c in line.strip("│┃").split(line[0])] for line in nps.splitlines() if line[:1] in "│┃"
    ]
    lines = {row[0]: row[1:] for row in cells if row and row[0]}
    assert lines["metric"] == ["(all tiers)", "high", "low", "tech"]
    assert lines["nps"] == ["+0.0", "n/a", "+33.3", "-20.0"]
    assert lines["response_rate"] == ["76.9%", "0.0%", "75.0%", "87.5%"]
    assert "csat_mean" not in lines  # an NPS step has no mean score
    assert "support: CSAT survey csat-ticket by touch tier" in text
    assert "NPS interval: adjusted Wald" in text


def test_the_report_csv_has_a_row_per_survey_figure(seeded: World) -> None:
    rows = list(csv.DictReader(io.StringIO(_run(seeded, *RANGE, "--format", "csv"))))
    found = {
        (r["journey"], r["step"], r["touch"], r["metric"]): r["value"]
        for r in rows
        if r["section"] == "surveys"
    }
    assert found[("nps", "nps-day-90", "(all tiers)", "nps")] == "0.0"
    assert found[("nps", "nps-day-90", "low", "promoters")] == "2"
    assert found[("nps", "nps-day-90", "high", "nps")] == ""  # nobody answered
    assert float(found[("support", "csat-ticket", "(all tiers)", "csat_mean")]) == pytest.approx(10 / 3)
