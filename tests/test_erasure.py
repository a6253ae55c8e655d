"""Erasing a contact removes its personal data from every table and the outbox; opt-out and counts remain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from engine_world import NOW, World
from sqlalchemy import func, insert, select

from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.delivery import suppression
from engagement.delivery.outbox import OutboxEmail
from engagement.store import schema
from engagement.testing.served import listening, serving

SERVER_KEY = "server-key-for-tests"
PERSONAL = ("c000@example.com", "C000", "Ada", "Lovelace", "+44 20 7946 0000")
COUNTED = (schema.events, schema.deliveries, schema.responses, schema.nudges, schema.enrollments)


@pytest.fixture
def erasable(world: World) -> World:
    """Two contacts who got an email (in the file outbox) and a nudge, with personal event data and responses."""
    world.configure(f'[api]\nserver_keys = ["{SERVER_KEY}"]\n')
    world.journey(
        """
        id: welcome
        name: Welcome
        status: active
        trigger: {event: signed_up}
        steps:
          - id: mail
            email: {template: onboarding/welcome, subject: "Welcome aboard, {{ contact.first_name }}"}
          - id: tip
            in_app: {title: "Hi {{ contact.first_name }}", body: "Your address is {{ contact.email }}"}
          - wait: 30d
          - id: later
            email: {template: onboarding/stalled, subject: "Later, {{ contact.first_name }}"}
        """
    )
    world.people(2, traits={"surname": "Lovelace", "phone": "+44 20 7946 0000"})
    world.events(
        *(
            {
                "contact_id": c,
                "name": "signed_up",
                "timestamp": NOW,
                "properties": {"name": "Ada", "plan": "pro"},
            }
            for c in ("c000", "c001")
        )
    )
    engine = world.engine_with(OutboxEmail(world.settings.path("outbox")))
    engine.tick(NOW)
    mail = world.rows(schema.deliveries, schema.deliveries.c.step_id == "mail")
    with world.db.begin() as conn:
        conn.execute(
            insert(schema.responses),
            [
                {
                    "delivery_id": row["id"],
                    "contact_id": row["contact_id"],
                    "journey_id": "welcome",
                    "step_id": "mail",
                    "kind": "open",
                    "occurred_at": NOW,
                    "dedupe_key": f"open:{row['id']}",
                    "data": {"email": row["to_address"], "ip": "203.0.113.9"},
                }
                for row in mail
            ],
        )
    assert len(list(world.settings.path("outbox").glob("*.eml"))) == 2
    return world


def everything(world: World) -> str:
    """Every row of every table and every outbox file, as one text to search."""
    parts: list[str] = []
    with world.db.begin() as conn:
        for table in schema.metadata.sorted_tables:
            parts += [repr(dict(row)) for row in conn.execute(select(table)).mappings()]
    for path in world.settings.path("outbox").rglob("*"):
        if path.is_file():
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


def counts(world: World) -> dict[str, int]:
    return {t.name: world.count(t) for t in COUNTED}


def test_erasing_over_the_api_removes_personal_data_everywhere_but_keeps_counts_and_the_opt_out(
    erasable: World,
) -> None:
    before = counts(erasable)
    assert all(text in everything(erasable) for text in PERSONAL)
    sock, url = listening()
    app = create_app(erasable.settings, database=erasable.db, clock=ManualClock(NOW + timedelta(hours=1)))
    with serving(app, sock):
        assert httpx.delete(f"{url}/v1/contacts/c000").status_code == 401
        assert (
            httpx.delete(
                f"{url}/v1/contacts/nobody", headers={"Authorization": f"Bearer {SERVER_KEY}"}
            ).status_code
            == 404
        )
        answer = httpx.delete(f"{url}/v1/contacts/c000", headers={"Authorization": f"Bearer {SERVER_KEY}"})
        assert answer.status_code == 200
        erased = answer.json()["erased"]
        assert erased["outbox_files"] == 1 and erased["suppressed"] is True
        nudges = httpx.get(
            f"{url}/v1/contacts/c000/nudges", headers={"Authorization": f"Bearer {SERVER_KEY}"}
        )
        assert nudges.json() == {"nudges": []}
    erasable.cli("contacts", "erase", "c001", "--yes")
    text = everything(erasable)
    leaked = [value for value in PERSONAL if value in text] + [
        v for v in ("c001@example.com", "C001") if v in text
    ]
    assert leaked == []
    assert counts(erasable) == before
    with erasable.db.begin() as conn:
        assert suppression.suppressed(conn, ["C000@example.com", "c001@example.com"]) == {
            "C000@example.com",
            "c001@example.com",
        }
        ended = conn.execute(
            select(func.count()).where(schema.enrollments.c.end_reason == "erased")
        ).scalar_one()
    assert ended == 2
    [tombstone] = erasable.rows(schema.contacts, schema.contacts.c.id == "c000")
    assert tombstone["erased_at"] is not None and tombstone["account_id"] == "acme"


def test_an_erased_contact_enters_no_journey_and_gets_no_message_even_when_re_imported(
    erasable: World,
) -> None:
    erasable.cli("contacts", "erase", "c000", "--yes")
    erasable.contacts({"id": "c000", "account_id": "acme", "email": "c000@example.com", "first_name": "Back"})
    erasable.journey(
        """
        id: again
        name: Again
        status: active
        trigger: {event: came_back}
        steps:
          - id: mail
            email: {template: onboarding/welcome, subject: "Hello again"}
        """
    )
    erasable.events(
        {"contact_id": "c000", "name": "came_back", "timestamp": NOW + timedelta(days=1),
         "properties": {"email": "c000@example.com"}}
    )  # fmt: skip
    erasable.tick(NOW + timedelta(days=1))
    assert erasable.count(schema.enrollments, schema.enrollments.c.journey_id == "again") == 0
    [tombstone] = erasable.rows(schema.contacts, schema.contacts.c.id == "c000")
    assert tombstone["email"] is None and tombstone["first_name"] == "" and tombstone["erased_at"] is not None
    [came_back] = erasable.rows(schema.events, schema.events.c.name == "came_back")
    assert came_back["properties"] == {}  # the event counts; what it said about the person is not kept
    erasable.tick(NOW + timedelta(days=31))  # c000's enrollment ended at erasure; c001 gets the later email
    assert [m.to for m in erasable.email.sent] == ["c001@example.com"]


def test_erasing_an_unknown_contact_says_so_and_exits_non_zero(erasable: World) -> None:
    result: Any = erasable.cli("contacts", "erase", "nobody", "--yes")
    assert result.exit_code != 0
    assert "no contact 'nobody'" in str(result.exception) + result.output
