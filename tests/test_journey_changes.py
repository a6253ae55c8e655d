"""Editing a journey file keeps the people in flight: steps keep their identity, removed steps hand on."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from engine_world import NOW, World
from sqlalchemy import update

from engagement.engine import load_catalog
from engagement.journeys import spec
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

en, moves, journeys = schema.enrollments, schema.enrollment_moves, schema.journeys
LATER = NOW + timedelta(days=2, hours=1)

HEAD = """\
id: drip
name: Drip
status: active
trigger: {event: signed_up}
"""
WELCOME = """\
  - id: welcome
    email: {template: onboarding/welcome, subject: "Welcome {{ contact.first_name }}"}
"""
TIPS = """\
  - id: tips
    email: {template: adoption/first-report-tips, subject: "Tips for {{ contact.first_name }}"}
"""
STALLED = """\
  - id: stalled
    email: {template: onboarding/stalled, subject: "Stuck, {{ contact.first_name }}?"}
"""
INTRO = """\
  - id: intro
    email: {template: onboarding/stalled, subject: "Intro for {{ contact.first_name }}"}
"""
WAIT = "  - wait: 2d\n"


def drip(world: World, *steps: str, extra: str = "") -> None:
    world.journey(HEAD + extra + "steps:\n" + "".join(steps))


def subjects(world: World) -> list[str]:
    return sorted(m.subject for m in world.email.sent)


def start(world: World, count: int = 3) -> list[str]:
    people = world.people(count)
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": NOW} for p in people))
    world.tick(NOW)
    return people


@pytest.mark.parametrize("inserted", [INTRO, "  - wait: 1h\n"], ids=["a named email", "an unnamed wait"])
def test_a_step_inserted_at_the_top_leaves_everyone_at_the_unnamed_wait_and_the_next_tick_sends_every_follow_up(
    world: World, inserted: str
) -> None:
    drip(world, WELCOME, WAIT, TIPS)
    people = start(world)
    assert {r["step_id"] for r in world.rows(en)} == {"welcome>wait"}

    drip(world, inserted, WELCOME, WAIT, TIPS)
    report = world.tick(LATER)

    assert subjects(world) == sorted(
        [f"Welcome {p.upper()}" for p in people] + [f"Tips for {p.upper()}" for p in people]
    )
    assert {(r["outcome"], r["end_reason"]) for r in world.rows(en)} == {("completed", "completed")}
    assert report.moves == []


def test_a_journey_that_opens_with_an_unnamed_wait_keeps_its_waiters_when_a_step_is_put_above_it(
    world: World,
) -> None:
    drip(world, WAIT, WELCOME)
    people = start(world)
    assert {r["step_id"] for r in world.rows(en)} == {"^>wait"}

    drip(world, INTRO, WAIT, WELCOME)
    early = world.tick(NOW + timedelta(days=1))
    assert subjects(world) == []  # the wait still holds: nobody skipped it, nobody got the new intro
    assert [str(m) for m in early.moves] == [
        "drip: moved 3 from '^>wait' to 'intro>wait' (same step, new id)"
    ]
    world.tick(LATER)

    assert subjects(world) == sorted(f"Welcome {p.upper()}" for p in people)


def test_people_at_a_removed_step_go_to_its_next_surviving_step_and_the_move_is_logged(world: World) -> None:
    drip(world, WELCOME, "  - id: pause\n    wait: 5d\n", TIPS)
    people = start(world)

    drip(world, WELCOME, TIPS)
    report = world.tick(NOW + timedelta(hours=1))

    assert [str(m) for m in report.moves] == ["drip: moved 3 from 'pause' to 'tips' (step removed)"]
    assert subjects(world) == sorted(
        [f"Welcome {p.upper()}" for p in people] + [f"Tips for {p.upper()}" for p in people]
    )
    logged = world.rows(moves)
    assert (
        sorted((m["from_step"], m["to_step"], m["reason"]) for m in logged)
        == [("pause", "tips", "step removed")] * 3
    )
    assert {m["enrollment_id"] for m in logged} == {r["id"] for r in world.rows(en)}
    assert world.tick(NOW + timedelta(hours=2)).moves == []  # recorded once, not again


def test_the_moved_map_decides_where_people_at_a_removed_step_go(world: World) -> None:
    drip(world, WELCOME, "  - id: pause\n    wait: 5d\n", TIPS, STALLED)
    people = start(world)

    drip(world, WELCOME, TIPS, STALLED, extra="moved: {pause: stalled}\n")
    report = world.tick(NOW + timedelta(hours=1))

    assert [str(m) for m in report.moves] == [
        "drip: moved 3 from 'pause' to 'stalled' (as the file's moved: says)"
    ]
    assert subjects(world) == sorted(
        [f"Welcome {p.upper()}" for p in people] + [f"Stuck, {p.upper()}?" for p in people]
    )


def test_an_unnamed_wait_removed_hands_its_people_to_the_step_after_it(world: World) -> None:
    drip(world, WELCOME, WAIT, TIPS)
    start(world, 2)

    drip(world, WELCOME, TIPS)
    report = world.tick(NOW + timedelta(hours=1))

    assert [str(m) for m in report.moves] == ["drip: moved 2 from 'welcome>wait' to 'tips' (step removed)"]
    assert len(world.email.sent) == 4


def test_people_at_a_removed_last_step_complete_and_the_end_is_logged(world: World) -> None:
    drip(world, WELCOME, "  - id: pause\n    wait: 5d\n", TIPS)
    start(world, 2)

    drip(world, WELCOME)
    report = world.tick(NOW + timedelta(hours=1))

    assert [str(m) for m in report.moves] == ["drip: ended 2 at 'pause' (step removed, nothing after it)"]
    assert {(r["state"], r["outcome"]) for r in world.rows(en)} == {("ended", "completed")}
    assert [m["to_step"] for m in world.rows(moves)] == [None, None]


def test_enrollments_stored_at_positional_ids_before_the_upgrade_go_on_at_the_same_step(world: World) -> None:
    drip(world, WELCOME, WAIT, TIPS)
    people = start(world)
    with world.db.begin() as conn:  # what a database written by the previous version holds
        conn.execute(update(en).values(step_id="wait@1"))
        conn.execute(update(journeys).values(steps=None))

    early = world.tick(NOW + timedelta(days=1))
    assert [str(m) for m in early.moves] == [
        "drip: moved 3 from 'wait@1' to 'welcome>wait' (step id upgraded)"
    ]
    assert len(world.email.sent) == 3  # still waiting
    world.tick(LATER)

    assert subjects(world) == sorted(
        [f"Welcome {p.upper()}" for p in people] + [f"Tips for {p.upper()}" for p in people]
    )


def test_the_cli_tick_prints_how_many_moved_where_and_why(world: World) -> None:
    drip(world, WELCOME, "  - id: pause\n    wait: 5d\n", TIPS)
    start(world)
    drip(world, WELCOME, TIPS)

    result = world.cli("tick", "--now", (NOW + timedelta(hours=1)).isoformat())

    assert result.exit_code == 0, result.output
    assert "drip: moved 3 from 'pause' to 'tips' (step removed)" in result.output


def test_validate_reports_a_moved_entry_to_a_missing_step_or_from_a_step_still_there(world: World) -> None:
    drip(world, WELCOME, TIPS, extra="moved:\n  pause: nowhere\n  tips: welcome\n")

    result = world.cli("validate")

    assert result.exit_code == 1
    path = world.journeys / "drip.yaml"
    assert (
        f"{path}:6: moved.pause: no step 'nowhere' to move to; this journey's steps: welcome, tips"
        in result.output
    )
    assert (
        f"{path}:7: moved.tips: step 'tips' is still in the journey; `moved` is for removed steps"
        in result.output
    )


def test_the_published_schema_describes_the_moved_map() -> None:
    moved = json.loads(json.dumps(spec.json_schema()))["properties"]["moved"]

    assert moved["type"] == "object" and moved["additionalProperties"]["type"] == "string"


def ids_of(world: World, *steps: str) -> list[str]:
    drip(world, *steps)
    journey = load_catalog(world.settings).get("drip")
    return [i.step_id for i in journey.program]


BRANCH = """\
  - branch:
      if: {contact.role: admin}
      then:
        - wait: 1d
        - id: admin-tips
          email: {template: adoption/first-report-tips, subject: Admin tips}
        - wait: 1d
      else:
        - wait: 2d
"""


def test_unnamed_steps_are_named_after_the_named_step_before_them_in_their_own_list(world: World) -> None:
    assert ids_of(
        world, WAIT, WELCOME, WAIT, "  - wait_until: {milestone: x}\n    timeout: 1d\n", WAIT, BRANCH, TIPS
    ) == [
        "^>wait",
        "welcome",
        "welcome>wait",
        "welcome>wait_until",
        "welcome>wait#2",
        "welcome>branch",
        "welcome>branch:then:^>wait",
        "admin-tips",
        "welcome>branch:then:admin-tips>wait",
        "welcome>branch:end",
        "welcome>branch:else:^>wait",
        "tips",
    ]


def test_reordering_named_steps_moves_each_unnamed_wait_with_the_step_it_follows(world: World) -> None:
    before = ids_of(world, WELCOME, WAIT, TIPS, "  - wait: 3d\n", STALLED)
    after = ids_of(world, TIPS, "  - wait: 3d\n", WELCOME, WAIT, STALLED)

    assert before == ["welcome", "welcome>wait", "tips", "tips>wait", "stalled"]
    assert sorted(after) == sorted(before)
