"""`engagement plan` says what a journey file change will do, with the counts the next tick then applies."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from engine_world import NOW, World
from sqlalchemy import func, select

from engagement.dryrun import plan as plans
from engagement.engine import load_catalog
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")

en, deliveries, moved_log = schema.enrollments, schema.deliveries, schema.enrollment_moves
SECOND = NOW + timedelta(days=1, hours=1)  # the first cohort gets its tips; the second signs up
LATER = NOW + timedelta(days=2, hours=2)  # the plan's instant, and the next tick's

HEAD = "id: drip\nname: Drip\nstatus: active\n"
EVENT = "trigger: {event: signed_up}\n"
WELCOME = '  - id: welcome\n    email: {template: onboarding/welcome, subject: "Welcome {{ contact.first_name }}"}\n'
WAIT = "  - wait: 1d\n"
TIPS = '  - id: tips\n    email: {template: adoption/first-report-tips, subject: "Tips for {{ contact.first_name }}"}\n'
PAUSE = "  - id: pause\n    wait: 5d\n"
STALLED = '  - id: stalled\n    email: {template: onboarding/stalled, subject: "Stuck, {{ contact.first_name }}?"}\n'
INTRO = '  - id: intro\n    email: {template: onboarding/stalled, subject: "Intro for {{ contact.first_name }}"}\n'


def write(world: World, *steps: str, trigger: str = EVENT) -> None:
    world.journey(HEAD + trigger + "steps:\n" + "".join(steps))


def signed_up(world: World, people: list[str], at: Any, name: str = "signed_up") -> None:
    world.events(*({"contact_id": p, "name": name, "timestamp": at} for p in people))


@pytest.fixture
def cohorts(world: World) -> dict[str, list[str]]:
    """People at every resting step: `first` at pause, `second` at the wait (due at LATER), `third` about
    to enter, `fourth` not signed up but activated."""
    write(world, WELCOME, WAIT, TIPS, PAUSE, STALLED)
    people = world.people(12)
    first, second, third, fourth = people[:4], people[4:7], people[7:9], people[9:]
    signed_up(world, first, NOW)
    world.tick(NOW)
    signed_up(world, second, SECOND)
    world.tick(SECOND)
    signed_up(world, third, LATER - timedelta(hours=1))
    signed_up(world, [*fourth, *first[:2]], LATER - timedelta(hours=1), "activated")
    steps = {r["subject_id"]: r["step_id"] for r in world.rows(en)}
    assert {steps[p] for p in first} == {"pause"} and {steps[p] for p in second} == {"welcome>wait"}
    return {"first": first, "second": second, "third": third, "fourth": fourth}


def planned(world: World, at: Any = LATER) -> plans.JourneyPlan:
    made = plans.plan(world.db, world.settings, load_catalog(world.settings), at)
    [journey] = made.journeys
    return journey


def written(world: World) -> dict[str, Any]:
    """Everything a plan must leave as it was."""
    with world.db.begin() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (en, deliveries, moved_log, schema.journey_versions, schema.subject_changes)
        }
        steps = conn.execute(select(schema.journeys.c.steps)).scalar_one()
        states = sorted(tuple(r) for r in conn.execute(select(en.c.id, en.c.step_id, en.c.next_action_at)))
    return {"counts": counts, "steps": steps, "states": states}


def queued_at(world: World, step_id: str, at: Any) -> int:
    return world.count(deliveries, deliveries.c.step_id == step_id, deliveries.c.created_at == at)


def test_removing_a_step_reports_the_moves_the_next_tick_makes_and_writes_nothing(
    world: World, cohorts: dict[str, list[str]]
) -> None:
    write(world, WELCOME, WAIT, TIPS, STALLED)
    before = written(world)

    journey = planned(world)

    assert written(world) == before
    [removed] = journey.steps
    assert removed == plans.StepChange("pause", plans.Change.REMOVED, (), 4, "stalled", "step removed")
    assert journey.moves_people and journey.entering is None
    report = world.tick(LATER)
    assert [str(m) for m in report.moves] == ["drip: moved 4 from 'pause' to 'stalled' (step removed)"]
    assert queued_at(world, "stalled", LATER) == 4 + 3  # the moved, and the second cohort with no pause now


def test_inserting_a_step_moves_nobody_and_counts_the_messages_the_next_tick_queues_at_it(
    world: World, cohorts: dict[str, list[str]]
) -> None:
    write(world, INTRO, WELCOME, WAIT, TIPS, PAUSE, STALLED)

    journey = planned(world)

    assert journey.steps == [plans.StepChange("intro", plans.Change.ADDED, queued=2)]
    assert not journey.moves_people
    report = world.tick(LATER)
    assert report.moves == []
    assert queued_at(world, "intro", LATER) == 2  # the third cohort, entering now


def test_changing_the_trigger_counts_who_enters_now_as_the_next_tick_enrolls(
    world: World, cohorts: dict[str, list[str]]
) -> None:
    write(world, WELCOME, WAIT, TIPS, PAUSE, STALLED, trigger="trigger: {event: activated}\n")

    journey = planned(world)

    assert journey.entry == ["trigger"] and journey.steps == []
    assert journey.entering == 3  # the fourth cohort; the first two of the first have been in once
    assert world.tick(LATER).journeys["drip"].enrolled == 3


def test_changing_only_a_subject_reports_the_step_and_the_messages_the_next_tick_sends_with_it(
    world: World, cohorts: dict[str, list[str]]
) -> None:
    write(world, WELCOME, WAIT, TIPS.replace("Tips for", "Your tips,"), PAUSE, STALLED)

    journey = planned(world)

    assert journey.steps == [plans.StepChange("tips", plans.Change.CHANGED, ("email.subject",), 0, queued=3)]
    assert journey.entry == [] and not journey.moves_people
    world.tick(LATER)
    sent = [m.subject for m in world.email.sent if m.subject.startswith("Your tips,")]
    assert sorted(sent) == sorted(f"Your tips, {p.upper()}" for p in cohorts["second"])


def test_an_unchanged_world_plans_no_changes_and_exits_0(world: World, cohorts: dict[str, list[str]]) -> None:
    result = world.cli("plan", "--now", LATER.isoformat())

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == ["drip: no changes", "no changes"]


def test_the_cli_exits_2_when_people_move_and_prints_the_json_ci_reads(
    world: World, cohorts: dict[str, list[str]]
) -> None:
    write(world, WELCOME, WAIT, TIPS, STALLED)

    result = world.cli("plan", "--now", LATER.isoformat(), "--format", "json")

    assert result.exit_code == 2, result.output
    shown = json.loads(result.output)
    assert shown["exit_code"] == 2 and shown["changes"] is True
    [journey] = shown["journeys"]
    assert journey["steps"] == [
        {
            "id": "pause",
            "change": "removed",
            "fields": [],
            "waiting": 4,
            "to": "stalled",
            "reason": "step removed",
            "queued": None,
        }
    ]
    text = world.cli("plan", "--now", LATER.isoformat())
    assert text.exit_code == 2
    assert "- step 'pause' removed: 4 enrollment(s) move to 'stalled' (step removed)" in text.output


def test_an_invalid_file_exits_1_with_its_problems(world: World) -> None:
    world.journey(HEAD + EVENT + "steps: []\n")

    result = world.cli("plan")

    assert result.exit_code == 1
    assert "drip.yaml" in result.output


def test_a_new_journey_counts_who_enters_at_once_and_what_its_first_tick_queues(world: World) -> None:
    people = world.people(5)
    signed_up(world, people[:3], NOW - timedelta(hours=1))
    write(world, WELCOME, WAIT, TIPS)

    journey = planned(world, NOW)

    assert (journey.change, journey.from_version, journey.entering) == (plans.Change.NEW, None, 3)
    assert journey.steps == [] and not journey.moves_people
    assert world.tick(NOW).journeys["drip"].enrolled == 3
    assert planned(world, NOW).change == plans.Change.UNCHANGED


def test_a_version_run_before_versions_were_kept_is_said_to_be_compared_by_step_ids_only(
    world: World, cohorts: dict[str, list[str]]
) -> None:
    with world.db.begin() as conn:  # as a database upgraded to 0024 after its last tick has it
        conn.execute(schema.journey_versions.delete())
    write(world, WELCOME, WAIT, TIPS.replace("Tips for", "Your tips,"), PAUSE, STALLED)

    journey = planned(world)
    result = world.cli("plan", "--now", LATER.isoformat())

    assert not journey.compared and journey.steps == []  # the subject change is not visible by step id
    assert "ran before versions were kept: its steps are known by id only" in result.output
    assert "entry rules changed" not in result.output
