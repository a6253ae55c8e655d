"""`engagement validate` and `engagement schema`: every problem located, every valid file accepted."""

from __future__ import annotations

import json
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from engine_world import REPO, World
from typer.testing import CliRunner

from engagement import config
from engagement.cli import app
from engagement.journeys import catalog
from engagement.journeys.files import journey_paths

SHIPPED = REPO / "journeys"
EXAMPLES = REPO.parent / "shared" / "spec" / "examples" / "journeys"  # ../shared beside the checkout


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def validate(world: World, *paths: Path) -> tuple[int, list[str]]:
    result = world.cli("validate", *map(str, paths))
    return result.exit_code, result.stdout.splitlines()


def parsed(path: Path) -> Any:
    text = path.read_text()
    return tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)


def test_the_shipped_journeys_validate_with_the_shipped_config() -> None:
    result = CliRunner().invoke(app, ["--config", str(REPO / "config.toml"), "validate"])

    assert result.exit_code == 0, result.output
    assert "6 journey(s) valid" in result.stdout


BROKEN_YAML = """
    id: broken
    name: Broken
    status: active
    trigger: {event: signed_up}
    re_entyr: never
    steps:
      - id: hello
        email:
          template: onboarding/nope
          subject: Hi
      - wait: 2 days
"""

BROKEN_TOML = """
    id = "broken-toml"
    name = "Broken"
    status = "active"
    re_entyr = "never"

    [trigger]
    event = "signed_up"

    [[steps]]
    id = "hello"
    email = { template = "onboarding/nope", subject = "Hi" }

    [[steps]]
    wait = "2 days"
"""


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [
        ("broken.yaml", BROKEN_YAML, {"re_entyr": 5, "template": 9, "wait": 11}),
        ("broken.toml", BROKEN_TOML, {"re_entyr": 4, "template": 11, "wait": 14}),
    ],
)
def test_validate_prints_each_problem_with_its_file_line_and_field_and_exits_1(
    world: World, name: str, text: str, lines: dict[str, int]
) -> None:
    path = write(world.root / "drafts", name, text)

    code, printed = validate(world, path)

    assert code == 1
    assert f"{path}:{lines['re_entyr']}: re_entyr: unknown key" in "\n".join(printed)
    assert f"{path}:{lines['wait']}: steps[1].wait: bad duration '2 days'" in "\n".join(printed)
    missing = [
        line for line in printed if line.startswith(f"{path}:{lines['template']}: steps[0].email.template: ")
    ]
    assert [line.rsplit("/", 1)[-1] for line in missing] == ["nope.html.j2", "nope.txt.j2"]
    assert len(printed) == 4, printed


NESTED_YAML = """
    id: nested
    name: Nested
    trigger: {event: signed_up}
    steps:
      - id: first
        in_app: {title: Hi}
      - branch:
          if: {contact.role: admin}
          then:
            - id: tell
              notify: {webhook: csm-alrts, text: hi}
          else:
            - wait: 3x
"""

NESTED_TOML = """
    id = "nested"
    name = "Nested"

    [trigger]
    event = "signed_up"

    [[steps]]
    id = "first"
    in_app = { title = "Hi" }

    [[steps]]
    [steps.branch]
    if = { "contact.role" = "admin" }

    [[steps.branch.then]]
    id = "tell"
    notify = { webhook = "csm-alrts", text = "hi" }

    [[steps.branch.else]]
    wait = "3x"
"""


MISPLACED = """
    id: misplaced
    name: Misplaced
    status: active
    audience: account
    trigger:
      days_until: {field: account.renewal_date, lte: 30}
    steps:
      - email:
          id: heads-up
          template: renew
          subject: Hi
          to: admins
          variants: [{id: a}, {id: b}]
"""


def test_a_known_key_in_the_wrong_place_says_where_it_belongs(world: World) -> None:
    path = write(world.root / "drafts", "misplaced.yaml", MISPLACED)

    code, printed = validate(world, path)

    assert code == 1
    text = "\n".join(printed)
    assert (
        f"{path}:6: trigger.days_until: unknown key: a condition that starts the journey goes under"
        " `trigger: {condition: {days_until: …}}`"
    ) in text
    assert f"{path}:9: steps[0].email.id: unknown key here: `id` belongs to the step, beside `email:`" in text
    assert f"{path}:13: steps[0].email.variants: unknown key here: `variants` belongs to the step" in text
    assert f"{path}:12: steps[0].email.to: unknown key here: " in text and "`recipients:`" in text


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [("nested.yaml", NESTED_YAML, (11, 13)), ("nested.toml", NESTED_TOML, (17, 20))],
)
def test_problems_inside_branch_arms_are_reported_on_their_own_lines(
    world: World, name: str, text: str, lines: tuple[int, int]
) -> None:
    path = write(world.root / "drafts", name, text)

    code, printed = validate(world, path)

    assert code == 1
    assert sorted(line.split(": ")[0:2] for line in printed) == [
        [f"{path}:{lines[0]}", "steps[1].branch.then[0].notify.webhook"],
        [f"{path}:{lines[1]}", "steps[1].branch.else[0].wait"],
    ]


def test_an_undefined_variable_in_a_subject_is_reported_on_the_subject_line(world: World) -> None:
    path = write(
        world.root / "drafts",
        "typo.yaml",
        """
        id: typo
        name: Typo
        trigger: {event: signed_up}
        steps:
          - id: hello
            email:
              template: onboarding/welcome
              subject: "Hi {{ contact.frist_name }}"
    """,
    )

    code, printed = validate(world, path)

    assert code == 1
    assert printed == [
        f"{path}:8: steps[0].email.subject: undefined variable: 'dict object' has no attribute 'frist_name'"
    ]


def test_duplicate_journey_ids_across_files_and_duplicate_step_ids_are_reported(world: World) -> None:
    folder = world.root / "dupes"
    write(
        folder,
        "a.yaml",
        """
        id: same
        name: A
        trigger: {event: signed_up}
        steps:
          - id: hello
            in_app: {title: Hello}
    """,
    )
    second = write(
        folder,
        "b.yaml",
        """
        # the same id again
        id: same
        name: B
        trigger: {event: signed_up}
        steps:
          - id: hello
            in_app: {title: Hello}
    """,
    )
    steps = write(
        folder,
        "c.yaml",
        """
        id: steps
        name: C
        trigger: {event: signed_up}
        steps:
          - id: hello
            in_app: {title: Hello}
          - wait: 1d
          - id: hello
            in_app: {title: Hello again}
          - in_app: {title: No id}
    """,
    )

    code, printed = validate(world, folder)

    assert code == 1
    assert printed == [
        f"{second}:2: id: duplicate journey id 'same' (also in {folder / 'a.yaml'})",
        f"{steps}:8: steps[2].id: duplicate step id 'hello'",
        f"{steps}:10: steps[3]: in_app steps need an `id` (reports and previews use it)",
    ]


def test_a_notify_step_naming_a_webhook_missing_from_config_is_reported(world: World) -> None:
    path = write(
        world.root / "drafts",
        "hook.yaml",
        """
        id: hook
        name: Hook
        trigger: {event: signed_up}
        steps:
          - id: tell
            notify: {webhook: sales-alerts, text: hi}
    """,
    )

    code, printed = validate(world, path)

    assert code == 1
    assert printed == [
        f"{path}:6: steps[0].notify.webhook: no webhook 'sales-alerts' in config; "
        "add [webhooks.sales-alerts] url = ..."
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("javascript:alert(1)", "'javascript:alert(1)'"),
        ("JavaScript:{{ contact.id }}", "'JavaScript:{{ contact.id }}' (for a sample contact 'JavaScript:"),
        ("data:text/html,hi", "'data:text/html,hi'"),
        ("//evil.example/x", "'//evil.example/x'"),
    ],
)
def test_a_nudge_cta_linking_anywhere_but_http_s_or_a_relative_url_is_reported(
    world: World, url: str, shown: str
) -> None:
    path = write(
        world.root / "drafts",
        "cta.yaml",
        f"""
        id: cta
        name: Cta
        trigger: {{event: signed_up}}
        steps:
          - id: nudge
            in_app:
              title: Hi
              cta:
                label: "Go, {{{{ contact.first_name }}}}"
                url: "{url}"
    """,
    )

    code, printed = validate(world, path)

    assert code == 1
    [line] = printed
    assert line.startswith(f"{path}:10: steps[0].in_app.cta.url: {shown}")
    assert line.endswith(
        ": a call-to-action links to an http(s) URL or a relative one (/settings, ?tab=2, #help)"
    )


def test_a_nudge_cta_label_with_an_undefined_variable_is_reported_on_its_line(world: World) -> None:
    path = write(
        world.root / "drafts",
        "cta.yaml",
        """
        id: cta
        name: Cta
        trigger: {event: signed_up}
        steps:
          - id: nudge
            in_app:
              title: Hi
              cta:
                label: "Go, {{ contact.nickname }}"
                url: https://app.example/go
    """,
    )

    code, printed = validate(world, path)

    assert code == 1
    assert [line.split(": undefined variable")[0] for line in printed] == [
        f"{path}:9: steps[0].in_app.cta.label"
    ]


# --- the JSON Schema ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def journey_schema() -> dict[str, Any]:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


@pytest.mark.parametrize(
    "path", journey_paths([SHIPPED, EXAMPLES]), ids=lambda p: f"{p.parent.parent.name}/{p.name}"
)
def test_the_published_schema_accepts_every_shipped_and_example_journey(
    journey_schema: dict[str, Any], path: Path
) -> None:
    jsonschema.validate(parsed(path), journey_schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"re_entyr": "never"}, "re_entyr"),
        ({"steps": [{"id": "x", "wait": "2 days"}]}, "2 days"),
        ({"goal": {"milestoen": "x"}}, "milestoen"),
    ],
)
def test_the_published_schema_rejects_a_misspelled_key_or_a_bad_duration(
    journey_schema: dict[str, Any], change: dict[str, Any], where: str
) -> None:
    journey = {**parsed(SHIPPED / "onboarding.yaml"), **change}

    with pytest.raises(jsonschema.ValidationError, match=where):
        jsonschema.validate(journey, journey_schema, cls=jsonschema.Draft202012Validator)


def test_every_spec_example_loads_without_problems_with_the_shipped_config() -> None:
    settings = config.load(REPO / "config.toml")

    found = catalog.load([EXAMPLES], settings)

    assert [str(p) for p in found.problems] == []
    assert sorted(found.journeys) == [
        "low-adoption",
        "onboarding-first-report",
        "stalled-time-to-value",
        "upcoming-renewal",
    ]


def test_a_folder_without_journey_files_fails_naming_the_folder(world: World) -> None:
    empty = world.root / "nothing-here"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a journey\n")

    result = world.cli("validate", str(empty))

    assert result.exit_code == 1
    assert f"no journey files (.yaml, .yml, .toml) in {empty}" in result.output  # one line, however long
    assert "ok" not in result.stdout  # never "ok: 0 journey(s) valid"
