"""One-click unsubscribe end to end: the link in a sent email's List-Unsubscribe header, served by the real API
on 127.0.0.1, suppresses the address, and the next tick sends that contact nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from engine_world import NOW, World

from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.delivery import unsubscribe
from engagement.delivery.message import OutboundEmail
from engagement.store import schema
from engagement.testing.served import listening, serving

d, contacts, suppressions = schema.deliveries, schema.contacts, schema.suppressions
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


def email_journey(world: World, journey_id: str, event: str) -> None:
    world.journey(
        f"id: {journey_id}\nname: {journey_id}\nstatus: active\ntrigger: {{event: {event}}}\nsteps:\n"
        f"  - id: mail\n    email: {{template: onboarding/welcome, subject: '{journey_id}'}}\n"
    )


@pytest.fixture
def api(world: World) -> Iterator[str]:
    """The engine's web app served by uvicorn in a thread; the engine builds its links to it."""
    sock, url = listening()
    world.configure(f'[server]\npublic_url = "{url}"\n')
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW + timedelta(hours=1)))
    with serving(app, sock):
        yield url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def sent_to(world: World, contact_id: str) -> OutboundEmail:
    [message] = [m for m in world.email.sent if m.to == f"{contact_id}@example.com"]
    return message


def sent_to_subject(world: World, contact_id: str, subject: str) -> OutboundEmail:
    [message] = [m for m in world.email.sent if m.to == f"{contact_id}@example.com" and m.subject == subject]
    return message


def link(message: OutboundEmail) -> str:
    """The http(s) target of the List-Unsubscribe header (a mailto: target may sit beside it)."""
    targets = [
        t.strip().removeprefix("<").removesuffix(">") for t in message.headers["List-Unsubscribe"].split(",")
    ]
    [url] = [t for t in targets if t.startswith(("https://", "http://"))]
    return url


def unchanged(world: World) -> bool:
    """Nobody suppressed and no contact marked unsubscribed."""
    return (
        world.count(suppressions) == 0 and world.count(contacts, contacts.c.unsubscribed_at.is_not(None)) == 0
    )


def test_one_click_post_from_the_emails_header_suppresses_the_address_and_the_next_tick_skips_it(
    world: World, api: str, http: httpx.Client
) -> None:
    world.configure('[unsubscribe]\nmailto = "unsubscribe@chartwell.example"\n')
    email_journey(world, "welcome", "signed_up")
    email_journey(world, "follow-up", "logged_in")
    people = world.people(3)
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": NOW} for p in people))
    world.tick(NOW)
    message = sent_to(world, "c001")
    url = link(message)
    assert url.startswith(f"{api}/unsubscribe/")
    assert "<mailto:unsubscribe@chartwell.example?subject=unsubscribe>" in message.headers["List-Unsubscribe"]
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in message.text  # the footer carries the same link

    answer = http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)

    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    [row] = world.rows(suppressions)
    assert (row["email"], row["reason"], row["source"]) == ("c001@example.com", "unsubscribe", "link:c001")
    [contact] = world.rows(contacts, contacts.c.id == "c001")
    assert contact["unsubscribed_at"] == NOW + timedelta(hours=1)

    world.events(
        *({"contact_id": p, "name": "logged_in", "timestamp": NOW + timedelta(hours=2)} for p in people)
    )
    report = world.tick(NOW + timedelta(hours=2))

    assert report.dispatched.suppressed == 1
    assert sorted(m.to for m in world.email.sent if m.subject == "follow-up") == [
        "c000@example.com",
        "c002@example.com",
    ]
    statuses = {r["contact_id"]: r["status"] for r in world.rows(d, d.c.journey_id == "follow-up")}
    assert statuses == {"c000": "sent", "c001": "suppressed", "c002": "sent"}


def test_the_preference_page_shows_the_address_and_a_one_click_form_and_changes_nothing(
    world: World, api: str, http: httpx.Client
) -> None:
    email_journey(world, "welcome", "signed_up")
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)
    url = link(sent_to(world, "c000"))

    for _ in range(2):
        page = http.get(url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "c000@example.com" in page.text
        assert f'<form method="post" action="{url.removeprefix(api)}">' in page.text
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        assert world.settings.company.postal_address in page.text
    assert unchanged(world)

    assert http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 200
    assert http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 200
    assert world.count(suppressions) == 1
    after = http.get(url)
    assert after.status_code == 200 and "You are unsubscribed" in after.text and "<form" not in after.text


def test_a_tampered_or_foreign_token_is_404_and_writes_nothing(
    world: World, api: str, http: httpx.Client
) -> None:
    email_journey(world, "welcome", "signed_up")
    world.people(2)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)
    url = link(sent_to(world, "c000")).split("?")[0]
    base, token = url.rsplit("/", 1)
    payload, mac = token.split(".")
    forged = [
        # signature altered in its first character: the last one of base64 carries padding bits too, and
        # changing only those decodes to the same signature
        f"{base}/{payload}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}",
        f"{base}/{'YzAwMQ'}.{mac}",  # another contact (c001) with c000's signature
        f"{base}/{payload}",  # no signature at all
        f"{base}/not-a-token",
    ]

    for bad in forged:
        assert http.post(bad, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 404
        assert http.get(bad).status_code == 404
    assert unchanged(world)


def test_the_unsubscribe_is_the_response_of_the_email_whose_link_was_used_and_lowers_the_score(
    world: World, api: str, http: httpx.Client
) -> None:
    email_journey(world, "welcome", "signed_up")
    email_journey(world, "follow-up", "logged_in")
    world.people(2)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)
    world.events(*({"contact_id": p, "name": "logged_in", "timestamp": NOW} for p in ("c000", "c001")))
    world.tick(NOW + timedelta(minutes=1))
    welcome = link(sent_to_subject(world, "c000", "welcome"))
    [welcome_id] = [r["id"] for r in world.rows(d, d.c.journey_id == "welcome")]
    assert welcome.endswith(f"?d={welcome_id}")

    for _ in range(2):  # a second click records nothing more
        assert http.post(welcome, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 200

    [response] = world.rows(schema.responses)
    assert (response["delivery_id"], response["contact_id"], response["kind"]) == (
        welcome_id,
        "c000",
        "unsubscribe",
    )
    assert (response["journey_id"], response["step_id"], response["data"]) == (
        "welcome",
        "mail",
        {"source": "link"},
    )
    world.tick(NOW + timedelta(hours=2))  # a tick credits scores first (the app's scorer may not have run)
    [credit] = world.rows(schema.score_credits, schema.score_credits.c.kind == "unsubscribe")
    assert (credit["contact_id"], credit["weight"]) == ("c000", world.settings.scoring.weights["unsubscribe"])


def test_a_link_naming_another_contacts_email_counts_against_the_contacts_own_latest_email(
    world: World, api: str, http: httpx.Client
) -> None:
    email_journey(world, "welcome", "signed_up")
    world.people(2)
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": NOW} for p in ("c000", "c001")))
    world.tick(NOW)
    own = {r["contact_id"]: r["id"] for r in world.rows(d)}
    forged = link(sent_to(world, "c001")).split("?")[0] + f"?d={own['c000']}"

    assert http.post(forged, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 200

    [response] = world.rows(schema.responses)
    assert (response["delivery_id"], response["contact_id"]) == (own["c001"], "c001")


def test_a_link_for_a_contact_never_emailed_unsubscribes_without_a_response(
    world: World, api: str, http: httpx.Client
) -> None:
    world.people(1)
    url = unsubscribe.url(api, "c000", world.settings.unsubscribe.secret)

    assert http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK).status_code == 200

    assert world.count(suppressions) == 1
    assert world.count(schema.responses) == 0


def test_healthz_answers_ok(api: str, http: httpx.Client) -> None:
    answer = http.get(f"{api}/healthz")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
