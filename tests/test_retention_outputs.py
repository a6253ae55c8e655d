"""`engagement report retention` in every format, and its errors: one line naming the option, exit 1."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest
from engine_world import World
from revenue_world import accounts, revenue, seed

from engagement import cli

RANGE = ("--from", "2026-01", "--to", "2026-04", "--now", "2026-04-20T12:00:00Z")


@pytest.fixture
def seeded(world: World) -> World:
    seed(world.db)
    return world


def _run(world: World, *args: str) -> str:
    result = world.cli("report", "retention", *RANGE, *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_json_holds_every_month_and_the_compounded_rates(seeded: World) -> None:
    doc = json.loads(_run(seeded, "--format", "json"))

    assert [m["start_mrr"] for m in doc["total"]["months"]] == [390, 420, 410, 430]
    assert [m["end_mrr"] for m in doc["total"]["months"]] == [420, 410, 430, 460]
    assert doc["total"]["months"][1]["contraction"] == 50 and doc["total"]["months"][1]["expansion"] == 40
    assert doc["total"]["months"][0]["renewal_rate"] is None  # nothing due: n/a is null
    assert doc["total"]["compounded"]["grr"] == pytest.approx(340 / 390 * 370 / 420 * 370 / 410)
    assert doc["in_progress"] == "2026-04" and doc["by"] is None and doc["groups"] == []


def test_the_csv_is_a_row_per_figure_with_na_left_empty(seeded: World) -> None:
    rows = list(csv.DictReader(io.StringIO(_run(seeded, "--format", "csv", "--by", "touch"))))

    def value(group: str, month: str, metric: str) -> str:
        [found] = [
            r["value"] for r in rows if (r["group"], r["month"], r["metric"]) == (group, month, metric)
        ]
        return found

    assert float(value("", "2026-01", "grr")) == pytest.approx(340 / 390)
    assert value("high", "2026-01", "grr") == ""  # no high-touch account paid at January's start
    assert float(value("high", "2026-01", "new")) == 80
    assert value("tech", "2026-01..2026-04", "compounded_grr") != ""
    assert {r["by"] for r in rows} == {"touch"}


def test_a_plan_named_like_a_formula_is_text_in_the_csv(world: World) -> None:
    accounts(world.db, ("X", "tech", "team", "2025-01-01"))
    revenue(world.db, ("X", "2026-01-10T00:00:00", 10, '=HYPERLINK("http://x")', None))

    rows = list(csv.reader(io.StringIO(_run(world, "--format", "csv", "--by", "plan"))))

    groups = {r[2] for r in rows[1:]}
    assert '\'=HYPERLINK("http://x")' in groups and not any(g.startswith("=") for g in groups)


def test_the_table_shows_na_for_rates_without_a_base_and_marks_the_month_in_progress(seeded: World) -> None:
    text = _run(seeded, "--by", "plan")

    assert "Retention, all accounts" in text and "Retention, plan business" in text
    assert "n/a" in text and "2026-04 *" in text
    assert "390.00" in text and "87.2%" in text  # January's start MRR; GRR 340 / 390


def test_the_html_file_has_the_bridge_and_the_rate_lines(seeded: World) -> None:
    page = _run(seeded, "--format", "html")

    assert 'data-chart="bridge"' in page and 'data-chart="rates"' in page
    assert "<script" not in page and 'src="http' not in page and 'href="http' not in page  # opens offline


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["engagement", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--from", "2026-13"), "--from: '2026-13' is not a month"),
        (("--from", "March"), "--from: 'March' is not a month"),
        (("--to", "2026-1"), "--to: '2026-1' is not a month"),
        (("--from", "2026-05", "--to", "2026-04"), "--to: 2026-04 is before --from 2026-05"),
        (("--from", "1990-01", "--to", "2026-04"), "--from: a retention report covers at most 240 months"),
        (("--to", "9999-12"), "--to: 9999-12 is past the end of the calendar"),
        (("--by", "region"), "--by: 'region' is not one of touch, plan, cohort"),
        (("--format", "xlsx"), "--format: 'xlsx' is not one of table, csv, json, html"),
    ],
)
def test_a_bad_option_is_one_line_naming_it_and_exit_1(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    named: str,
) -> None:
    err = _main(monkeypatch, capsys, "--config", str(world.config_path), "report", "retention", *args)

    assert err.startswith("error: ") and named in err


def test_the_journey_report_still_runs_without_a_subcommand(seeded: World) -> None:
    result = seeded.cli("report", "--from", "2026-03-01", "--to", "2026-03-07", "--format", "json")

    assert result.exit_code == 0, result.output
    assert "journeys" in json.loads(result.output)
