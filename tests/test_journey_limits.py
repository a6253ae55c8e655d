"""Journey files that would blow up the engine are refused at the door, with their file and line."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import pytest
from engine_world import NOW, World

from engagement.conditions.parse import MAX_DEPTH
from engagement.engine import load_catalog
from engagement.journeys.files import MAX_NESTING, MAX_VALUES

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

HEAD = """\
id: deep
name: Deep
status: active
trigger: {event: signed_up}
"""


def nested(levels: int) -> str:
    """A condition `levels` deep: not, all, not, all … around one that holds for everyone."""
    text = "{event_count: {event: never_happens, lt: 1}}"
    for level in range(levels - 1):
        text = f"{{not: {text}}}" if level % 2 == 0 else f"{{all: [{text}]}}"
    return text


def deep_journey(world: World, levels: int) -> None:
    steps = "steps:\n  - id: hello\n    email: {template: onboarding/welcome, subject: Hello}\n"
    (world.journeys / "deep.yaml").write_text(HEAD + f"filter: {nested(levels)}\n" + steps)


def problems(world: World) -> list[str]:
    result = world.cli("validate")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return [line for line in result.stdout.splitlines() if line.startswith(str(world.journeys))]


def test_a_condition_as_deep_as_allowed_validates_and_ticks_on_both_databases(world: World) -> None:
    deep_journey(world, MAX_DEPTH)
    assert world.cli("validate").exit_code == 0
    people = world.people(2)
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": NOW} for p in people))

    report = world.tick(NOW + timedelta(minutes=1))

    assert report.failures == {}
    assert (
        report.journeys["deep"].enrolled == 2
    )  # the milestone is missing; MAX_DEPTH is even: one `not` short


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 100, 600])
def test_a_condition_nested_deeper_than_allowed_is_one_problem_on_its_line(world: World, levels: int) -> None:
    deep_journey(world, levels)

    found = problems(world)

    path = world.journeys / "deep.yaml"
    if levels <= MAX_NESTING // 2:
        [line] = found
        assert line.startswith(f"{path}:5: filter.")
        assert line.endswith(f": conditions nest at most {MAX_DEPTH} levels deep (all, any, not)")
    else:  # the file itself is too deep to read
        assert found == [f"{path}:5: nested more than {MAX_NESTING} levels deep"]


def test_a_toml_journey_nested_too_deep_is_refused_with_its_line_before_it_is_parsed(world: World) -> None:
    condition = "{ not = " * 600 + '{ milestone = "x" }' + " }" * 600
    text = f'id = "deep"\nname = "Deep"\n# a [ in a comment\n[trigger]\nevent = "signed_up"\nfilter = {condition}\n'
    (world.journeys / "deep.toml").write_text(text)

    assert problems(world) == [
        f"{world.journeys / 'deep.toml'}:6: nested more than {MAX_NESTING} levels deep"
    ]


BOMB = """\
id: bomb
name: Bomb
trigger: {event: signed_up}
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
steps: [*g]
"""


def test_an_alias_bomb_is_refused_where_it_passes_the_limit_without_expanding_it(world: World) -> None:
    (world.journeys / "bomb.yaml").write_text(BOMB)

    tracemalloc.start()
    try:
        found = problems(world)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    path = world.journeys / "bomb.yaml"
    assert found == [f"{path}:8: more than {MAX_VALUES} values once aliases are expanded"]
    assert peak < 20_000_000


def test_an_anchor_reused_as_an_alias_is_read_as_the_same_value_twice(world: World) -> None:
    (world.journeys / "alias.yaml").write_text(
        HEAD + "filter: &admins {contact.role: admin}\nexit: {not: *admins}\n"
        "steps:\n  - id: hello\n    email: {template: onboarding/welcome, subject: Hello}\n"
    )

    journey = load_catalog(world.settings).get("deep")

    assert journey.spec.exit == {"not": {"contact.role": "admin"}} and journey.filter is not None


def test_an_alias_inside_the_value_it_names_is_refused_at_its_line(world: World) -> None:
    (world.journeys / "loop.yaml").write_text(HEAD + "filter: &loop {all: [*loop]}\nsteps: []\n")

    assert problems(world) == [f"{world.journeys / 'loop.yaml'}:5: an alias inside the value it names"]


def test_an_alias_that_nests_a_value_too_deep_is_refused_at_the_alias(world: World) -> None:
    deep = "{not: " * 56 + "{milestone: x}" + "}" * 56  # 58 levels: within the limit where it stands
    (world.journeys / "deep.yaml").write_text(
        HEAD
        + f"filter: &deep {deep}\nexit: {{not: {{not: {{not: {{all: [{{not: *deep}}]}}}}}}}}\nsteps: []\n"
    )

    assert problems(world) == [
        f"{world.journeys / 'deep.yaml'}:6: nested more than {MAX_NESTING} levels deep"
    ]
