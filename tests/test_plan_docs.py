"""The CI example in docs/operations.md is a workflow GitHub can read, and its JSON is what `plan` prints."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from engine_world import NOW, World, one_email
from test_journey_changes import STALLED, WELCOME, drip, start

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Checking journey changes in CI"


def blocks(kind: str) -> list[str]:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(rf"^```{kind}\n(.*?)^```", section, re.M | re.S)


def shape(value: Any) -> Any:
    """The keys of every object, nested, lists by their first item: what a reader of the JSON relies on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def test_the_workflow_is_valid_yaml_that_runs_validate_then_plan_on_pull_requests() -> None:
    [text] = blocks("yaml")
    workflow = yaml.safe_load(text)

    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    [job] = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any(r.strip() == "engagement validate" for r in runs)
    assert any("engagement plan --format json" in r for r in runs)
    assert all("uses" in step or "run" in step for step in job["steps"])


def test_the_documented_json_has_the_shape_plan_prints(world: World) -> None:
    world.journey(one_email("old-drip"))
    drip(world, WELCOME, "  - id: pause\n    wait: 5d\n", STALLED)
    start(world, 4)
    (world.journeys / "old-drip.yaml").unlink()
    drip(world, WELCOME, STALLED)

    result = world.cli("plan", "--now", (NOW + timedelta(hours=1)).isoformat(), "--format", "json")

    assert result.exit_code == 2, result.output
    printed = json.loads(result.output)
    [documented] = blocks("json")
    assert shape(json.loads(documented)) == shape(printed)
    assert printed["journeys"][0]["steps"][0] == json.loads(documented)["journeys"][0]["steps"][0]
    assert printed["gone"] == [{"id": "old-drip", "active": 0}]
