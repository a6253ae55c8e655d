"""A journey's steps flatten into one typed instruction per step kind, with explicit jumps around branches."""

from __future__ import annotations

from datetime import timedelta

from engine_world import World

from engagement.conditions import ast
from engagement.engine import load_catalog
from engagement.journeys import program

JOURNEY = """\
id: mix
name: Mix
status: active
trigger: {event: signed_up}
steps:
  - id: hello
    if: {milestone: activated}
    email: {template: onboarding/welcome, subject: "Hi {{ contact.first_name }}"}
  - wait: 2d
  - wait_until: {milestone: first_report}
    timeout: 3d
  - id: check
    branch:
      if: {milestone: invited_team}
      then:
        - id: nudge
          in_app: {title: Well done, body: Invite more}
      else:
        - id: tell
          notify: {webhook: csm-alerts, text: "{{ contact.email }} has not invited anyone"}
  - wait: 1d
"""


def test_each_step_kind_becomes_its_own_instruction_with_its_typed_fields_and_branch_jumps(
    world: World,
) -> None:
    world.journey(JOURNEY)

    steps = load_catalog(world.settings).get("mix").program

    assert [(type(i).__name__, i.step_id, i.index, i.next) for i in steps] == [
        ("Email", "hello", 0, 1),
        ("Wait", "hello>wait", 1, 2),
        ("WaitUntil", "hello>wait_until", 2, 3),
        ("Branch", "check", 3, 4),
        ("InApp", "nudge", 4, 5),
        ("Jump", "check:end", 5, 7),
        ("Notify", "tell", 6, 7),
        ("Wait", "check>wait", 7, 8),
    ]
    email, wait, until, branch, nudge, _, tell, _ = steps
    assert isinstance(email, program.Email) and email.spec.template == "onboarding/welcome"
    assert email.guard == ast.Milestone("activated") and email.kind == "email"
    assert isinstance(wait, program.Wait) and wait.duration == timedelta(days=2)
    assert isinstance(until, program.WaitUntil) and until.timeout == timedelta(days=3)
    assert until.condition == ast.Milestone("first_report")
    assert isinstance(branch, program.Branch) and branch.alt == 6
    assert branch.condition == ast.Milestone("invited_team") and program.after(steps, branch) == 7
    assert isinstance(nudge, program.InApp) and nudge.spec.title == "Well done" and nudge.kind == "in_app"
    assert isinstance(tell, program.Notify) and tell.spec.webhook == "csm-alerts" and tell.kind == "notify"
    assert [i.step_id for i in steps if isinstance(i, program.Message)] == ["hello", "nudge", "tell"]
    assert program.legacy_id(until) == "wait_until@2"
