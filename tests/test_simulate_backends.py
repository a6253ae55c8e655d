"""A dry run works on every backend: its SQLite copy of a PostgreSQL database evaluates everyone afresh."""

from __future__ import annotations

from datetime import timedelta

from engine_world import NOW, World

from engagement.dryrun import simulate
from engagement.engine import load_catalog
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

JOURNEY = """
    id: onboarding
    name: Onboarding
    status: active
    trigger: {event: signed_up}
    steps:
      - id: welcome
        email: {template: onboarding/welcome, subject: "Welcome aboard"}
      - wait: 1d
      - id: tips
        email: {template: onboarding/welcome, subject: "Tips"}
"""


def test_a_simulation_plans_the_same_sends_on_every_backend_whatever_its_change_log_holds(
    world: World,
) -> None:
    world.journey(JOURNEY)
    world.people(3)  # their rows fill the change log (PostgreSQL's kind on PostgreSQL)
    world.events(
        *({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "c001", "c002"))
    )
    assert world.count(schema.subject_changes) > 0
    before = [dict(r) for r in world.rows(schema.enrollments)]

    start = NOW + timedelta(hours=1)
    result = simulate.run(world.settings, world.db, load_catalog(world.settings), start=start, days=2)

    planned = sorted((p.step_id, p.contact_id) for p in result.timeline)
    assert planned == [(step, c) for step in ("tips", "welcome") for c in ("c000", "c001", "c002")]
    assert [dict(r) for r in world.rows(schema.enrollments)] == before == []
