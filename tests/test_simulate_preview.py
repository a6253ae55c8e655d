"""Dry runs and previews show what would be sent, and send and change nothing."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_world import NOW, World

from engagement import errors
from engagement.delivery.templates import Renderer
from engagement.dryrun import preview, simulate
from engagement.engine import load_catalog
from engagement.store import schema

en, d = schema.enrollments, schema.deliveries
POSTAL = "500 Example Street, Suite 100, Springfield, OR 97477, USA"
ENGAGEMENT = Path(sys.executable).with_name("engagement")

JOURNEY = """
    id: {id}
    name: Onboarding
    status: {status}
    trigger: {{event: signed_up}}
    steps:
      - id: welcome
        email: {{template: onboarding/welcome, subject: "Welcome aboard, {{{{ contact.first_name }}}}"}}
      - wait: 1d
      - id: connect
        if: {{not: {{milestone: integration_connected}}}}
        in_app: {{title: "Connect your data, {{{{ contact.first_name }}}}", body: It takes two minutes.}}
"""


def snapshot(world: World) -> list[list[dict[str, Any]]]:
    return [[dict(row) for row in world.rows(table)] for table in (en, d, schema.nudges)]


def test_a_simulation_returns_the_timeline_and_leaves_the_database_and_outbox_untouched(world: World) -> None:
    world.journey(JOURNEY.format(id="onboarding", status="active"))
    world.people(3, first_name="Ada")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)  # c000 is already on its way; its welcome email went out for real
    world.events(
        *(
            {"contact_id": c, "name": "signed_up", "timestamp": NOW + timedelta(hours=1)}
            for c in ("c001", "c002")
        )
    )
    before = snapshot(world)
    start = NOW + timedelta(hours=2)

    result = simulate.run(world.settings, world.db, load_catalog(world.settings), start=start, days=2)

    planned = [(p.at - start, p.step_id, p.contact_id, p.email, p.subject, p.status) for p in result.timeline]
    assert planned == [
        (timedelta(0), "welcome", "c001", "c001@example.com", "Welcome aboard, Ada", "sent"),
        (timedelta(0), "welcome", "c002", "c002@example.com", "Welcome aboard, Ada", "sent"),
        (timedelta(hours=22), "connect", "c000", "c000@example.com", "Connect your data, Ada", "sent"),
        (timedelta(days=1), "connect", "c001", "c001@example.com", "Connect your data, Ada", "sent"),
        (timedelta(days=1), "connect", "c002", "c002@example.com", "Connect your data, Ada", "sent"),
    ]
    assert dict(result.enrolled) == {"onboarding": 2}
    assert snapshot(world) == before
    assert len(world.email.sent) == 1
    assert not (world.root / "outbox").exists()


def test_simulating_a_draft_journey_by_name_runs_it_as_if_active_and_keeps_it_a_draft(world: World) -> None:
    world.journey(JOURNEY.format(id="new-onboarding", status="draft"))
    world.people(2, first_name="Ada")
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "c001")))

    result = world.cli(
        "simulate",
        "new-onboarding",
        "--days",
        "2",
        "--start",
        NOW.isoformat(),
        "--show",
        "0",
        "--csv",
        str(world.root / "plan.csv"),
    )

    assert result.exit_code == 0, result.output
    assert "4 message(s); enrolled: new-onboarding 2" in result.stdout
    plan = (world.root / "plan.csv").read_text().splitlines()
    assert plan[0] == "at,journey,step,variant,channel,contact_id,email,subject,status"
    assert sorted(line.split(",")[2] for line in plan[1:]) == ["connect", "connect", "welcome", "welcome"]
    assert world.count(en) == 0 and world.count(d) == 0
    assert not (world.root / "outbox").exists()


def test_simulating_an_unknown_journey_names_the_known_ones(world: World) -> None:
    world.journey(JOURNEY.format(id="onboarding", status="active"))

    with pytest.raises(errors.NotFoundError, match=r"no journey 'onbaording' \(known: onboarding\)"):
        simulate.restrict(load_catalog(world.settings), "onbaording")


# --- preview ------------------------------------------------------------------------------------


def render(world: World, step: str, contact: str) -> preview.Preview:
    journey = load_catalog(world.settings).get("onboarding")
    renderer = Renderer(world.settings.path(world.settings.templates.dir))
    return preview.render(world.settings, world.db, renderer, journey, step, contact, NOW)


def test_preview_renders_an_email_step_for_one_contact_as_it_would_be_sent(world: World) -> None:
    world.journey(JOURNEY.format(id="onboarding", status="draft"))
    world.people(1, first_name="Ada")

    shown = render(world, "welcome", "c000")

    assert shown.subject == "Welcome aboard, Ada"
    assert shown.text is not None and shown.text.startswith("Hi Ada,") and POSTAL in shown.text
    assert shown.html is not None and ">Hi Ada,</p>" in shown.html and POSTAL in shown.html
    assert world.count(d) == 0


def test_preview_of_an_in_app_step_says_whether_its_if_holds_for_the_contact(world: World) -> None:
    world.journey(JOURNEY.format(id="onboarding", status="draft"))
    world.people(2, first_name="Ada")
    world.events(
        {"contact_id": "c001", "name": "integration_connected", "timestamp": NOW - timedelta(days=1)}
    )

    fresh, connected = render(world, "connect", "c000"), render(world, "connect", "c001")

    assert fresh.payload == {"title": "Connect your data, Ada", "body": "It takes two minutes.", "cta": None}
    assert (fresh.guard_holds, connected.guard_holds) == (True, False)


def test_the_preview_command_prints_subject_and_text_and_writes_the_html(world: World) -> None:
    world.journey(JOURNEY.format(id="onboarding", status="draft"))
    world.people(1, first_name="Ada")
    out = world.root / "welcome.html"

    result = world.cli("preview", "onboarding", "welcome", "--contact", "c000", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert "Subject: Welcome aboard, Ada" in result.stdout.splitlines()
    assert "Hi Ada," in result.stdout.splitlines()
    assert ">Hi Ada,</p>" in out.read_text()


@pytest.mark.parametrize(
    ("step", "contact", "message"),
    [
        ("welcome", "nobody", "no contact 'nobody'"),
        ("welcom", "c000", "journey 'onboarding' has no message step 'welcom' (steps: welcome, connect)"),
    ],
)
def test_preview_names_an_unknown_contact_or_step(
    world: World, step: str, contact: str, message: str
) -> None:
    world.journey(JOURNEY.format(id="onboarding", status="draft"))
    world.people(1)

    with pytest.raises(errors.NotFoundError) as caught:
        render(world, step, contact)

    assert str(caught.value) == message


def test_the_preview_command_exits_1_with_one_clear_line_for_an_unknown_contact(world: World) -> None:
    world.journey(JOURNEY.format(id="onboarding", status="draft"))

    done = subprocess.run(
        [
            str(ENGAGEMENT),
            "--config",
            str(world.config_path),
            "preview",
            "onboarding",
            "welcome",
            "--contact",
            "nobody",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert done.stderr == "error: no contact 'nobody'\n"
