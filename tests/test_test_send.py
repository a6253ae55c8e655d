"""Test send: `preview --send-to` and the contact page's button send one email step, rendered for the
contact, to a test address through the configured provider; the `test_send` ledger keeps it, no report,
cap or delivery counts it, and the button's POST needs the session's CSRF token."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_world import NOW, World

from engagement.api import logins
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.delivery import dispatch
from engagement.dryrun import test_send
from engagement.engine import load_catalog
from engagement.reports import build, period, sheets
from engagement.store import schema
from engagement.testing.served import served

BACKENDS = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"
SERVER_KEY = "sk-test-send"
JOURNEY = """\
id: onboarding
name: Onboarding
status: active
trigger: {event: signed_up}
steps:
  - id: welcome
    email: {template: onboarding/welcome, subject: "Welcome aboard, {{ contact.first_name }}"}
  - id: later
    wait: 1d
  - id: nudge
    in_app: {title: Connect, body: Connect your data.}
"""


def _seed(world: World) -> None:
    world.journey(JOURNEY)
    world.people(2, first_name="Ann")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW - timedelta(hours=1)})
    world.tick(NOW)


def _report(world: World) -> dict[str, Any]:
    made = build.for_settings(world.settings, world.db, period.choose(NOW, "30d", None, None), NOW)
    doc = sheets.to_json(made)
    doc.pop("generated_at", None)
    return doc


def _send_from_the_command(world: World) -> Any:
    """`engagement preview onboarding welcome --contact c000 --send-to qa@example.com` at NOW."""
    args = ("--contact", "c000", "--send-to", "qa@example.com", "--now", NOW.isoformat())
    return world.cli("preview", "onboarding", "welcome", *args)


def _outbox(world: World) -> list[Path]:
    return sorted((world.root / "outbox").glob("*.eml"))


def test_the_command_sends_the_step_to_the_test_address_and_no_report_changes(world: World) -> None:
    _seed(world)
    before, deliveries = _report(world), world.count(schema.deliveries)
    with world.db.begin() as conn:
        recent = dispatch.recent_emails(conn, ["c000"], NOW)
    mailed = set(_outbox(world))

    shown = _send_from_the_command(world)

    assert shown.exit_code == 0, shown.output
    assert "sent to qa@example.com" in shown.output
    [row] = world.rows(schema.test_sends)
    assert (row["status"], row["to_address"], row["contact_id"], row["requested_by"]) == (
        "sent",
        "qa@example.com",
        "c000",
        "cli",
    )
    [new] = set(_outbox(world)) - mailed
    message = message_from_bytes(new.read_bytes())
    assert message["To"].endswith("qa@example.com") and message["X-Engagement-Test"] == "1"
    assert message["Subject"] == "[test] Welcome aboard, Ann"
    assert message["List-Unsubscribe"]
    assert _report(world) == before
    assert world.count(schema.deliveries) == deliveries
    with world.db.begin() as conn:
        assert dispatch.recent_emails(conn, ["c000"], NOW) == recent  # the weekly cap does not count it


def test_only_email_steps_and_real_unsuppressed_addresses_are_test_sent(world: World) -> None:
    _seed(world)
    world.suppress("blocked@example.com")
    journey = load_catalog(world.settings).get("onboarding")
    from engagement.delivery.templates import Renderer
    from engagement.engine import email_provider

    renderer = Renderer(world.settings.path(world.settings.templates.dir))
    provider = email_provider(world.settings)
    for step, to, says in (
        ("nudge", "qa@example.com", "only email steps"),
        ("welcome", "not an address", "--send-to: 'not an address' is not an email address"),
        ("welcome", "blocked@example.com", "on the suppression list"),
    ):
        with pytest.raises(test_send.RefusedError, match=re.escape(says)):
            test_send.send(
                world.db,
                world.settings,
                renderer,
                provider,
                journey,
                step,
                "c000",
                to,
                NOW,
                requested_by="test",
            )
    assert world.count(schema.test_sends) == 0


@pytest.fixture
def site(world: World) -> Iterator[str]:
    hashed = logins.hash_password(PASSWORD)
    world.configure(
        f'[api]\nserver_keys = ["{SERVER_KEY}"]\n'
        f'[reports]\nusers = {{ maria = "{hashed}" }}\nsession_secret = "test-session-secret"\n'
    )
    _seed(world)
    with served(create_app(world.settings, database=world.db, clock=ManualClock(NOW))) as url:
        yield url


def _log_in(client: httpx.Client, site: str) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get(f"{site}/reports/login").text)
    assert token is not None
    client.post(f"{site}/reports/login", data={"csrf": token[1], "username": "maria", "password": PASSWORD})


def test_the_button_needs_the_sessions_csrf_token(site: str, world: World) -> None:
    with httpx.Client(follow_redirects=False) as client:
        _log_in(client, site)
        page = client.get(f"{site}/contacts/c000").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        form = {"step": "onboarding:welcome", "to": "qa@example.com"}
        for forged in ({}, {"csrf": "x" * 64}, {"csrf": token[1] + "0"}):
            answer = client.post(f"{site}/contacts/c000/test-send", data=form | forged)
            assert answer.status_code == 403 and "csrf" in answer.text
        assert world.count(schema.test_sends) == 0
        with httpx.Client() as stranger:  # the token without the session's cookie is worth nothing
            answer = stranger.post(f"{site}/contacts/c000/test-send", data=form | {"csrf": token[1]})
            assert answer.status_code == 401
        assert world.count(schema.test_sends) == 0
        sent = client.post(f"{site}/contacts/c000/test-send", data=form | {"csrf": token[1]})
        assert sent.status_code == 303 and "sent=" in sent.headers["location"]
        assert world.count(schema.test_sends) == 1
        wrong = client.post(
            f"{site}/contacts/c000/test-send", data={**form, "step": "onboarding:nudge", "csrf": token[1]}
        )
        assert wrong.status_code == 422 and json.loads(wrong.text)["detail"][0]["field"] == "step"
    keyed = httpx.post(
        f"{site}/contacts/c000/test-send", data=form, headers={"Authorization": f"Bearer {SERVER_KEY}"}
    )
    assert keyed.status_code == 303
    assert world.count(schema.test_sends) == 2


def test_chromium_sends_a_test_from_the_contact_page(site: str, world: World, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{site}/contacts/c001")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/reports")
    page.goto(f"{site}/contacts/c001")
    page.select_option("#test-send select[name=step]", "onboarding:welcome")
    page.fill("#test-send input[name=to]", "qa@example.com")
    page.click("#test-send button[type=submit]")
    page.wait_for_url("**/contacts/c001?sent=*")
    assert "sent" in page.locator("#test-send p.sent").inner_text()
    [row] = world.rows(schema.test_sends)
    assert (row["contact_id"], row["requested_by"], row["status"]) == ("c001", "maria", "sent")
    assert errors == []
    context.close()


def test_erasing_the_contact_removes_what_its_test_sends_rendered(world: World) -> None:
    _seed(world)
    mailed = set(_outbox(world))
    shown = _send_from_the_command(world)
    assert shown.exit_code == 0, shown.output
    [copy] = set(_outbox(world)) - mailed
    assert world.cli("contacts", "erase", "c000", "--yes").exit_code == 0
    [row] = world.rows(schema.test_sends)
    assert row["subject"] is None and row["status"] == "sent"
    assert not copy.exists()
