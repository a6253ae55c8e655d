"""Every journey version the engine ran is kept; enrollments and deliveries name the version they ran under."""

from __future__ import annotations

from datetime import timedelta

from engine_world import NOW, World
from test_journey_changes import HEAD, TIPS, WAIT, WELCOME, drip, start

from engagement.journeys import versions
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")

en, deliveries, kept = schema.enrollments, schema.deliveries, schema.journey_versions


def test_each_version_the_engine_runs_is_kept_once_with_its_text_and_shape(world: World) -> None:
    drip(world, WELCOME, WAIT, TIPS)
    start(world, 2)
    first = world.engine.catalog.get("drip").version
    world.tick(NOW + timedelta(hours=1))  # the same version again: nothing new kept
    drip(world, WELCOME, TIPS)
    path = world.journeys / "drip.yaml"
    world.tick(NOW + timedelta(hours=2))
    second = world.engine.catalog.get("drip").version

    rows = sorted(world.rows(kept), key=lambda r: r["first_run_at"])
    assert [(r["version"], r["first_run_at"]) for r in rows] == [
        (first, NOW),
        (second, NOW + timedelta(hours=2)),
    ]
    assert rows[1]["content"] == path.read_text()
    assert rows[0]["content"].startswith(HEAD)
    assert list(versions.steps(rows[0]["shape"])) == ["welcome", "welcome>wait", "tips"]
    assert versions.steps(rows[1]["shape"])["tips"]["email"]["subject"] == "Tips for {{ contact.first_name }}"


def test_enrollments_and_deliveries_name_the_version_they_were_written_under(world: World) -> None:
    drip(world, WELCOME, WAIT, TIPS)
    start(world, 2)
    first = world.engine.catalog.get("drip").version
    drip(world, WELCOME, WAIT, TIPS.replace("Tips for", "More tips for"))
    world.tick(NOW + timedelta(days=2, hours=1))
    second = world.engine.catalog.get("drip").version
    assert first != second

    assert {r["journey_version"] for r in world.rows(en)} == {first}
    by_step = {(r["step_id"], r["journey_version"]) for r in world.rows(deliveries)}
    assert by_step == {("welcome", first), ("tips", second)}


def test_a_draft_journey_keeps_no_version(world: World) -> None:
    drip(world, WELCOME, extra="")
    (world.journeys / "drip.yaml").write_text(
        (world.journeys / "drip.yaml").read_text().replace("active", "draft")
    )
    world._engine = None
    world.tick(NOW)

    assert world.rows(kept) == []
