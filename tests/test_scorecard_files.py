"""Scorecard files: `engagement validate` locates every problem (file:line: field), `engagement schema --kind
scorecard` describes the format, and the shipped scorecards pass both."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from engine_world import REPO, World
from typer.testing import CliRunner

from engagement import config
from engagement.cli import app
from engagement.health import cards as scorecards

SHIPPED = REPO / "scorecards"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_the_shipped_scorecards_validate_with_the_shipped_config() -> None:
    result = CliRunner().invoke(app, ["--config", str(REPO / "config.toml"), "validate"])
    assert result.exit_code == 0, result.output
    assert "2 scorecard(s) valid: touch, tech-touch" in result.stdout


def test_validate_reports_each_scorecard_problem_with_its_file_line_and_field(world: World) -> None:
    path = write(
        world.root / "scorecards",
        "broken.yaml",
        """
        id: broken
        applies_to: {account.tuch: tech}
        bands: {green: 30, yellow: 60}
        measures:
          - id: adoption
            weight: 0
            metric: {active_dayz: {within: 30d}}
            points: [[0, 0], [10, 100]]
          - id: support
            weight: 10
            metric: {event_count: {event: ticket_opened, within: 30 days}}
            points: [[3, 100], [1, 0]]
            missing: sometimes
        """,
    )
    result = world.cli("validate")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    expected = [
        f"{path}:2: applies_to.account.tuch: unknown field",
        f"{path}:3: bands: yellow must not be above green",
        f"{path}:6: measures[0].weight:",
        f"{path}:7: measures[0].metric.active_dayz: unknown key",
        f"{path}:11: measures[1].metric.event_count.within:",
        f"{path}:12: measures[1].points: the values (first of each pair) must increase",
        f"{path}:13: measures[1].missing:",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, lines)


def test_a_toml_scorecard_problem_names_its_line(world: World) -> None:
    path = write(
        world.root / "scorecards",
        "card.toml",
        """
        id = "card"
        [[measures]]
        id = "nps"
        weight = 10
        metric = {nps = {within = "180d"}}
        points = [[-100, 0], [100, 100]]
        missing = 120
        """,
    )
    result = world.cli("validate")
    assert result.exit_code == 1
    assert any(line.startswith(f"{path}:7: measures[0].missing:") for line in result.stdout.splitlines()), (
        result.stdout
    )


def test_a_metric_or_points_of_the_wrong_shape_say_what_shape_they_take(world: World) -> None:
    path = write(
        world.root / "scorecards",
        "shapes.toml",
        """
        id = "shapes"
        [[measures]]
        id = "use"
        weight = 1
        metric = "active_days"
        points = [{gte = 10, points = 100}]
        """,
    )
    result = world.cli("validate")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert (
        f"{path}:5: measures[0].metric: expected a mapping (key: value), got 'active_days'; one metric by"
        " name, e.g. `metric: {active_days: {within: 30d}}`"
    ) in lines, lines
    assert (
        f"{path}:6: measures[0].points[0]: expected a pair of two values, e.g. [0, 100],"
        " got {'gte': 10, 'points': 100}"
    ) in lines, lines


def test_nan_or_infinity_anywhere_in_a_scorecard_is_refused_as_not_finite(world: World) -> None:
    path = write(
        world.root / "scorecards",
        "nan.toml",
        """
        id = "nan"
        bands = {green = nan, yellow = 40}
        [[measures]]
        id = "use"
        weight = inf
        missing = nan
        metric = {active_days = {within = "30d"}}
        points = [[nan, 0], [10, 100]]
        """,
    )
    result = world.cli("validate")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    for line, field in ((2, "bands.green"), (5, "measures[0].weight"), (6, "measures[0].missing"),
                        (8, "measures[0].points[0][0]")):  # fmt: skip
        assert f"{path}:{line}: {field}: Input should be a finite number" in lines, (field, lines)


def test_applies_to_cannot_read_health_and_ids_are_unique(world: World) -> None:
    folder = world.root / "scorecards"
    write(
        folder,
        "a.yaml",
        "id: same\napplies_to: {health: red}\nmeasures: [{id: m, weight: 1, metric: engagement, points: [[0, 0]]}]\n",
    )
    write(
        folder, "b.yaml", "id: same\nmeasures: [{id: m, weight: 1, metric: engagement, points: [[0, 0]]}]\n"
    )
    write(
        folder, "c.yaml", "id: same\nmeasures: [{id: m, weight: 1, metric: engagement, points: [[0, 0]]}]\n"
    )
    found = scorecards.load(world.settings)
    messages = [str(p) for p in found.problems]
    assert any("a.yaml:2: applies_to: applies_to cannot read health" in m for m in messages), messages
    assert any("c.yaml: id: duplicate scorecard id 'same'" in m for m in messages), messages


@pytest.fixture(scope="module")
def scorecard_schema() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["schema", "--kind", "scorecard"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.name)
def test_the_published_scorecard_schema_accepts_the_shipped_scorecards(
    scorecard_schema: dict[str, Any], path: Path
) -> None:
    jsonschema.validate(
        yaml.safe_load(path.read_text()), scorecard_schema, cls=jsonschema.Draft202012Validator
    )


def test_the_published_scorecard_schema_rejects_a_misspelled_metric(scorecard_schema: dict[str, Any]) -> None:
    card = yaml.safe_load((SHIPPED / "tech-touch.yaml").read_text())
    card["measures"][0]["metric"] = {"active_dayz": {"within": "30d"}}
    with pytest.raises(jsonschema.ValidationError, match="active_dayz"):
        jsonschema.validate(card, scorecard_schema, cls=jsonschema.Draft202012Validator)


def test_schema_without_kind_still_prints_the_journey_schema() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert json.loads(result.stdout)["title"] == "engagement journey"


def test_the_default_health_settings() -> None:
    current = config.Settings()
    assert (current.health.dir, current.health.refresh.total_seconds()) == ("scorecards", 3600)
    assert current.reports.calibration_lead.days == 90
