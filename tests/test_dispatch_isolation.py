"""Whatever goes wrong while one message is prepared or handed over (a corrupt stored value, a template that
raises, a provider that breaks its contract) ends that message alone, with its reason; the rest of its
claimed batch is sent and nothing is left `sending`."""

from __future__ import annotations

from typing import Any

import pytest
from engine_world import NOW, World
from sqlalchemy import text

from engagement.delivery.message import OutboundEmail
from engagement.delivery.recording import RecordingEmail
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

d = schema.deliveries
NICK = "{{ contact.traits.get('nick', 'there') }}"
JOURNEYS = {
    "mail": f'  - id: hello\n    email: {{template: onboarding/welcome, subject: "Hi {NICK}"}}\n',
    "nudge": "  - id: nudge\n    in_app: {title: \"Hi {{ contact.traits.get('nick', 'there') }}\", body: Welcome}\n",
    "alert": "  - id: tell\n    notify: {webhook: csm-alerts, text: \"{{ contact.traits.get('nick', 'someone') }} joined\"}\n",
}


def journeys(world: World) -> None:
    for name, step in JOURNEYS.items():
        world.journey(
            f"id: {name}\nname: {name}\nstatus: active\ntrigger: {{event: signed_up}}\nsteps:\n{step}"
        )


def by_contact(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["contact_id"], r["journey_id"]): dict(r) for r in world.rows(d)}


def test_a_lone_surrogate_in_a_stored_trait_fails_only_its_own_messages_and_the_batch_is_sent(
    world: World,
) -> None:
    if world.db.dialect != "sqlite":
        pytest.skip("PostgreSQL's jsonb refuses a lone surrogate: only SQLite's JSON text can hold one")
    journeys(world)
    contacts = world.people(3)
    with world.db.begin() as conn:  # as an old import or a hand edit could have left it
        conn.execute(text("UPDATE contact SET traits = '{\"nick\": \"A\\ud800\"}' WHERE id = 'c001'"))
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in contacts))

    ticked = world.cli("tick", "--now", NOW.isoformat())  # the default outbox: .eml and notify JSON files

    assert ticked.exit_code == 0, ticked.output
    assert "failed 1: the nudge's title is not valid Unicode text ('\\ud800' at character 4)" in ticked.output
    rows = by_contact(world)
    for journey in JOURNEYS:
        assert rows[("c000", journey)]["status"] == rows[("c002", journey)]["status"] == "sent"
        bad = rows[("c001", journey)]
        assert bad["status"] == "failed", (journey, bad)
        assert "not valid Unicode text ('\\ud800'" in bad["status_reason"]
        assert "a stored value it shows is corrupt" in bad["status_reason"]
    assert len(list((world.root / "outbox").glob("*.eml"))) == 2
    assert len(list((world.root / "outbox" / "notify").glob("*.json"))) == 2
    assert world.count(schema.nudges) == 2


def test_a_template_that_raises_any_error_for_one_recipient_fails_that_message_alone(world: World) -> None:
    world.journey(
        "id: seats\nname: Seats\nstatus: active\ntrigger: {event: signed_up}\nsteps:\n"
        "  - id: nudge\n    in_app: {title: \"{{ 100 // contact.traits.get('seats', 1) }} per seat\", body: Hi}\n"
    )
    world.people(1, prefix="zero", traits={"seats": 0})
    contacts = ["zero000", *world.people(2)]
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in contacts))

    report = world.tick(NOW)

    assert (report.dispatched.sent, report.dispatched.failed) == (2, 1)
    rows = {r["contact_id"]: r for r in world.rows(d)}
    assert rows["zero000"]["status"] == "failed"
    assert rows["zero000"]["status_reason"] == "ZeroDivisionError: integer division or modulo by zero"
    assert rows["c000"]["status"] == rows["c001"]["status"] == "sent"
    assert report.dispatched.reasons == {
        ("failed", "ZeroDivisionError: integer division or modulo by zero"): 1
    }


class Breaking(RecordingEmail):
    """A provider that breaks its contract for one address: it raises something that is not a SendError."""

    def send(self, message: OutboundEmail) -> str:
        if message.to.startswith("c001@"):
            raise RuntimeError("provider bug")
        return super().send(message)


def test_a_provider_raising_outside_its_contract_leaves_that_email_in_doubt_and_sends_the_rest(
    world: World,
) -> None:
    world.journey(
        "id: mail\nname: Mail\nstatus: active\ntrigger: {event: signed_up}\nsteps:\n"
        "  - id: hello\n    email: {template: onboarding/welcome, subject: Hello}\n"
    )
    contacts = world.people(3)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in contacts))
    provider = Breaking()

    report = world.engine_with(provider).tick(NOW)

    assert (report.dispatched.sent, report.dispatched.in_doubt) == (2, 1)
    rows = {r["contact_id"]: r for r in world.rows(d)}
    assert (rows["c001"]["status"], rows["c001"]["status_reason"]) == (
        "in_doubt",
        "RuntimeError: provider bug",
    )
    assert rows["c000"]["status"] == rows["c002"]["status"] == "sent"
    assert world.count(d, d.c.status == "sending") == 0


PER_SEAT = "{{ 100 // contact.traits.get('seats', 1) }} per seat"
ZERO = "ZeroDivisionError: integer division or modulo by zero"
RAISING = {  # journey: (its step, the reason its message fails for a contact with no seats)
    "mail": (
        f'  - id: hello\n    email: {{template: onboarding/welcome, subject: "{PER_SEAT}"}}\n',
        f"template 'onboarding/welcome': subject: {ZERO}",
    ),
    "nudge": (f'  - id: nudge\n    in_app: {{title: "{PER_SEAT}", body: Hi}}\n', ZERO),
    "alert": (f'  - id: tell\n    notify: {{webhook: csm-alerts, text: "{PER_SEAT}"}}\n', ZERO),
}


def test_a_template_raising_for_one_recipient_mid_batch_fails_that_message_on_every_channel_and_sends_the_rest(
    world: World,
) -> None:
    for name, (step, _) in RAISING.items():
        world.journey(
            f"id: {name}\nname: {name}\nstatus: active\ntrigger: {{event: signed_up}}\nsteps:\n{step}"
        )
    world.people(3)
    world.contacts({"id": "c001", "account_id": "acme", "email": "c001@example.com", "traits": {"seats": 0}})
    world.events(*({"contact_id": f"c00{i}", "name": "signed_up", "timestamp": NOW} for i in range(3)))

    report = world.tick(NOW)  # nine deliveries, one claimed batch (limits.in_flight is 100)

    assert (report.dispatched.sent, report.dispatched.failed) == (6, 3)
    rows = by_contact(world)
    for journey, (_, reason) in RAISING.items():
        bad = rows[("c001", journey)]
        assert (bad["status"], bad["status_reason"]) == ("failed", reason), journey
        assert rows[("c000", journey)]["status"] == rows[("c002", journey)]["status"] == "sent", journey
    assert report.dispatched.reasons == {("failed", RAISING["mail"][1]): 1, ("failed", ZERO): 2}
    assert world.count(d, d.c.status == "sending") == 0
    assert sorted(m.to for m in world.email.sent) == ["c000@example.com", "c002@example.com"]
    assert sorted(m["contact_id"] for m in world.rows(schema.nudges)) == ["c000", "c002"]
    assert len(world.webhooks.sent) == 2
