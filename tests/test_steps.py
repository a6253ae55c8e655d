"""Each step kind does what the journey file says, for the right people, at the right time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from engine_world import NOW, World, one_email
from webhook_endpoint import Endpoint, serving

from engagement import config
from engagement.clock import ManualClock
from engagement.delivery import unsubscribe
from engagement.delivery.http_webhook import HttpWebhook
from engagement.engine import Engine, load_catalog
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

en, d, nudges = schema.enrollments, schema.deliveries, schema.nudges
POSTAL = "500 Example Street, Suite 100, Springfield, OR 97477, USA"


def sent(world: World) -> list[tuple[str, str]]:
    return [(m.to.split("@")[0], m.subject) for m in world.email.sent]


# --- email --------------------------------------------------------------------------------------


def test_an_email_step_sends_the_rendered_subject_both_parts_unsubscribe_headers_and_the_footer(
    world: World,
) -> None:
    world.journey(one_email("hello", "welcome"))
    world.people(1, first_name="Ada")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})

    world.tick(NOW)

    [message] = world.email.sent
    assert message.to == "c000@example.com"
    assert message.subject == "Welcome aboard, Ada"
    assert message.text.startswith("Hi Ada,")
    assert ">Hi Ada,</p>" in message.html
    assert POSTAL in message.text
    assert POSTAL in message.html
    link = message.headers["List-Unsubscribe"]
    assert link.startswith("<http://127.0.0.1:8000/unsubscribe/") and link.endswith(">")
    token, _, delivery = link.strip("<>").rsplit("/", 1)[1].partition("?d=")
    assert delivery == world.rows(schema.deliveries)[0]["id"]  # the email the link came in
    assert unsubscribe.read_token(token, world.settings.unsubscribe.secret) == "c000"
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.strip("<>") in message.text
    [delivery] = world.rows(d)
    assert (delivery["status"], delivery["subject"], delivery["sent_at"]) == (
        "sent",
        "Welcome aboard, Ada",
        NOW,
    )


# --- in-app -------------------------------------------------------------------------------------


def test_an_in_app_step_puts_a_rendered_nudge_with_its_cta_and_expiry_in_the_inbox(world: World) -> None:
    world.journey("""
        id: nudge
        name: Nudge
        status: active
        trigger: {event: signed_up}
        steps:
          - id: connect
            in_app:
              title: "{{ contact.first_name }}, connect your data"
              body: "{{ account.name }} has no data source yet."
              cta: {label: Connect, url: /settings/integrations}
              expires: 7d
    """)
    world.people(1, first_name="Ada")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})

    world.tick(NOW)

    [nudge] = world.rows(nudges)
    assert nudge["contact_id"] == "c000"
    assert nudge["title"] == "Ada, connect your data"
    assert nudge["body"] == "Acme has no data source yet."
    assert (nudge["cta_label"], nudge["cta_url"]) == ("Connect", "/settings/integrations")
    assert nudge["expires_at"] == NOW + timedelta(days=7)
    [delivery] = world.rows(d)
    assert (delivery["channel"], delivery["status"], delivery["id"]) == (
        "in_app",
        "sent",
        nudge["delivery_id"],
    )
    assert world.email.sent == []


# --- notify -------------------------------------------------------------------------------------

NOTIFY = """
    id: alert
    name: Alert
    status: active
    trigger: {event: signed_up}
    steps:
      - id: tell-csm
        notify: {webhook: csm-alerts, text: "{{ contact.first_name }} at {{ account.name }} signed up"}
"""


def test_a_notify_step_posts_the_rendered_text_to_the_named_webhook(world: World) -> None:
    world.journey(NOTIFY)
    world.people(1, first_name="Ada")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})

    world.tick(NOW)

    [message] = world.webhooks.sent
    assert (message.name, message.url) == ("csm-alerts", "https://hooks.example.com/services/csm-alerts")
    assert message.payload["text"] == "Ada at Acme signed up"
    assert message.payload["account"]["id"] == "acme"
    assert message.payload["journey"] == {"id": "alert", "name": "Alert"}
    [delivery] = world.rows(d)
    assert (delivery["recipient"], delivery["status"]) == ("webhook:csm-alerts", "sent")


def test_the_outbox_webhook_provider_writes_an_account_journeys_notify_message_to_a_json_file(
    world: World,
) -> None:
    world.journey("""
        id: renewal-alert
        name: Renewal alert
        status: active
        audience: account
        trigger: {condition: {account.plan: pro}}
        steps:
          - id: tell-csm
            notify: {webhook: csm-alerts, text: "{{ account.name }} ({{ account.plan }}) renews soon"}
    """)
    world.people(2)
    engine = Engine(
        world.settings, clock=ManualClock(NOW), database=world.db, catalog=load_catalog(world.settings)
    )

    engine.tick(NOW)

    [delivery] = world.rows(d)
    written = json.loads((world.root / "outbox" / "notify" / f"{delivery['id']}.json").read_text())
    assert written["webhook"] == "csm-alerts"
    assert written["url"] == "https://hooks.example.com/services/csm-alerts"
    assert written["payload"]["text"] == "Acme (pro) renews soon"
    assert (written["payload"]["account"]["id"], written["payload"]["contact_id"]) == ("acme", None)
    assert (delivery["status"], delivery["provider"]) == ("sent", "outbox")


@pytest.fixture
def hook() -> Iterator[Endpoint]:
    with serving("/hooks/csm") as endpoint:
        yield endpoint


def http_engine(world: World, url: str, slept: list[float] | None = None) -> Engine:
    settings = config.load(
        world.config_path, notify={"provider": "http"}, webhooks={"csm-alerts": {"url": url}}
    )
    webhooks = HttpWebhook(
        attempts=3, base_seconds=0.5, max_seconds=4, sleep=(slept if slept is not None else []).append
    )
    return Engine(
        settings,
        clock=ManualClock(NOW),
        database=world.db,
        catalog=load_catalog(settings),
        email=world.email,
        webhooks=webhooks,
    )


def test_the_http_provider_posts_the_notify_message_as_json_with_an_idempotency_key(
    world: World, hook: Endpoint
) -> None:
    world.journey(NOTIFY)
    world.people(1, first_name="Ada")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})

    http_engine(world, hook.url).tick(NOW)

    [(path, headers, body)] = hook.requests
    [delivery] = world.rows(d)
    assert path == "/hooks/csm"
    assert body["text"] == "Ada at Acme signed up"
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == delivery["id"]
    assert (delivery["status"], delivery["provider"]) == ("sent", "http")


def test_a_webhook_that_answers_503_is_retried_with_backoff_and_posted_once_it_recovers(
    world: World, hook: Endpoint
) -> None:
    world.journey(NOTIFY)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    hook.answers = [(503, {})]
    slept: list[float] = []
    engine = http_engine(world, hook.url, slept)

    engine.tick(NOW)
    [delivery] = world.rows(d)
    assert delivery["status"] == "sent"
    assert len(hook.requests) == 2
    assert len(slept) == 1 and 0.5 <= slept[0] <= 1.0


def test_a_webhook_that_stays_down_fails_after_the_configured_attempts_and_is_not_retried_at_later_ticks(
    world: World, hook: Endpoint
) -> None:
    world.journey(NOTIFY)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    hook.answers = [(503, {})] * 10
    engine = http_engine(world, hook.url)

    engine.tick(NOW)
    engine.tick(NOW + timedelta(minutes=1))
    [delivery] = world.rows(d)
    assert delivery["status"] == "failed"
    assert "503" in delivery["status_reason"] and "3 attempts" in delivery["status_reason"]
    assert len(hook.requests) == 3


# --- waits --------------------------------------------------------------------------------------


def test_a_wait_holds_the_next_step_until_its_duration_has_passed(world: World) -> None:
    world.journey("""
        id: waiting
        name: Waiting
        status: active
        trigger: {event: signed_up}
        steps:
          - id: first
            email: {template: onboarding/welcome, subject: First}
          - wait: 2d
          - id: second
            email: {template: onboarding/stalled, subject: Second}
    """)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})

    world.tick(NOW)
    [waiting] = world.rows(en)
    world.tick(NOW + timedelta(days=2) - timedelta(minutes=1))
    assert sent(world) == [("c000", "First")]

    world.tick(NOW + timedelta(days=2))
    assert sent(world) == [("c000", "First"), ("c000", "Second")]
    assert waiting["next_action_at"] == NOW + timedelta(days=2)
    [done] = world.rows(en)
    assert done["outcome"] == "completed"


def test_wait_until_continues_when_its_condition_becomes_true_or_when_the_timeout_passes(
    world: World,
) -> None:
    world.journey("""
        id: wait-report
        name: Wait for a report
        status: active
        trigger: {event: signed_up}
        steps:
          - id: first
            email: {template: onboarding/welcome, subject: First}
          - id: wait-report
            wait_until: {milestone: first_report_created}
            timeout: 3d
          - id: second
            email: {template: onboarding/stalled, subject: Second}
    """)
    world.people(2)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "c001")))
    world.tick(NOW)
    world.events(
        {"contact_id": "c000", "name": "first_report_created", "timestamp": NOW + timedelta(hours=5)}
    )

    world.tick(NOW + timedelta(hours=6))
    assert sent(world)[2:] == [("c000", "Second")]

    world.tick(NOW + timedelta(days=3) - timedelta(minutes=1))
    assert sent(world)[2:] == [("c000", "Second")]

    world.tick(NOW + timedelta(days=3))
    assert sent(world)[2:] == [("c000", "Second"), ("c001", "Second")]


# --- if and branch ------------------------------------------------------------------------------


def test_a_step_whose_if_is_false_is_skipped_and_the_journey_goes_on(world: World) -> None:
    world.journey("""
        id: guarded
        name: Guarded
        status: active
        trigger: {event: signed_up}
        steps:
          - id: admins-only
            if: {contact.role: admin}
            email: {template: onboarding/welcome, subject: For admins}
          - id: everyone
            email: {template: onboarding/stalled, subject: For everyone}
    """)
    world.people(1, prefix="admin", role="admin")
    world.people(1, prefix="member", role="member")
    world.events(
        *({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("admin000", "member000"))
    )

    world.tick(NOW)

    assert sorted(sent(world)) == [
        ("admin000", "For admins"),
        ("admin000", "For everyone"),
        ("member000", "For everyone"),
    ]
    assert {row["outcome"] for row in world.rows(en)} == {"completed"}


def test_a_branch_sends_the_then_arm_when_its_condition_holds_and_the_else_arm_otherwise(
    world: World,
) -> None:
    world.journey("""
        id: branching
        name: Branching
        status: active
        trigger: {event: signed_up}
        steps:
          - branch:
              if: {contact.role: admin}
              then:
                - id: admin-mail
                  email: {template: onboarding/welcome, subject: Then}
              else:
                - wait: 1d
                - id: member-mail
                  email: {template: onboarding/welcome, subject: Else}
          - id: after
            email: {template: onboarding/stalled, subject: After}
    """)
    world.people(1, prefix="admin", role="admin")
    world.people(1, prefix="member", role="member")
    world.events(
        *({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("admin000", "member000"))
    )

    world.tick(NOW)
    assert sorted(sent(world)) == [("admin000", "After"), ("admin000", "Then")]

    world.tick(NOW + timedelta(days=1))
    assert sorted(sent(world)[2:]) == [("member000", "After"), ("member000", "Else")]


def test_a_branch_whose_own_if_is_false_is_skipped_whole_and_the_journey_goes_on_after_both_arms(
    world: World,
) -> None:
    world.journey("""
        id: guarded-branch
        name: Guarded branch
        status: active
        trigger: {event: signed_up}
        steps:
          - id: fork
            if: {contact.role: admin}
            branch:
              if: {contact.first_name: Ada}
              then:
                - id: then-mail
                  email: {template: onboarding/welcome, subject: Then}
              else:
                - id: else-mail
                  email: {template: onboarding/welcome, subject: Else}
          - id: after
            email: {template: onboarding/stalled, subject: After}
    """)
    world.people(1, prefix="member", role="member", first_name="Ada")
    world.people(1, prefix="admin", role="admin", first_name="Ada")
    world.events(
        *({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("member000", "admin000"))
    )

    world.tick(NOW)

    assert sorted(sent(world)) == [("admin000", "After"), ("admin000", "Then"), ("member000", "After")]


# --- account audience ---------------------------------------------------------------------------


def test_an_account_journey_emails_only_the_contacts_its_recipients_filter_picks(world: World) -> None:
    world.journey("""
        id: accounts
        name: Accounts
        status: active
        audience: account
        recipients: {contact.role: admin}
        trigger: {condition: {account.plan: pro}}
        steps:
          - id: recap
            email: {template: renewal/value-recap, subject: "{{ account.name }}: your year"}
    """)
    world.people(2, account="acme", prefix="admin", role="admin")
    world.people(1, account="acme", prefix="member", role="member")
    world.people(1, account="other", prefix="other", role="admin")
    world.accounts({"id": "other", "plan": "free"})

    world.tick(NOW)

    assert sorted(sent(world)) == [("admin000", "Acme: your year"), ("admin001", "Acme: your year")]
    [enrollment] = world.rows(en)
    assert (enrollment["subject_id"], enrollment["audience"]) == ("acme", "account")
    assert {row["enrollment_id"] for row in world.rows(d)} == {enrollment["id"]}
