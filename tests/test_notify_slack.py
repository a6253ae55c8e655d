"""Notify steps are safe for Slack: a 429 holds the message for its Retry-After and then sends it once, and
values in the text are escaped so an account named <!channel> pings no one. A real HTTP endpoint on
127.0.0.1 plays the webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest
from engine_world import NOW, World
from webhook_endpoint import Endpoint, serving

from engagement import config
from engagement.clock import ManualClock, SystemClock
from engagement.delivery.http_webhook import HttpWebhook
from engagement.engine import Engine, load_catalog
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

d = schema.deliveries
SECOND = timedelta(seconds=1)
NOTIFY = """
    id: alert
    name: Alert
    status: active
    trigger: {event: signed_up}
    steps:
      - id: tell-csm
        notify: {webhook: csm-alerts, text: "<https://crm.example/a|{{ account.name }}>: {{ contact.first_name }} signed up"}
"""


@pytest.fixture
def slack() -> Iterator[Endpoint]:
    with serving("/services/T000/B000/XXXX") as endpoint:
        yield endpoint


def engine(world: World, url: str, **target: Any) -> Engine:
    settings = config.load(
        world.config_path, notify={"provider": "http"}, webhooks={"csm-alerts": {"url": url, **target}}
    )
    return Engine(
        settings,
        clock=ManualClock(NOW),
        database=world.db,
        catalog=load_catalog(settings),
        email=world.email,
        webhooks=HttpWebhook(attempts=2, base_seconds=0.0, max_seconds=0.0, sleep=lambda _: None),
    )


def test_a_429_from_the_webhook_holds_the_message_for_its_retry_after_then_sends_it_once(
    world: World, slack: Endpoint
) -> None:
    world.journey(NOTIFY)
    world.people(1, first_name="Ada")
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    slack.answers = [(429, {"Retry-After": "30"})]
    alerts = engine(world, slack.url)

    first = alerts.tick(NOW)

    assert (first.dispatched.rate_limited, first.dispatched.failed, first.dispatched.sent) == (1, 0, 0)
    [held] = world.rows(d)
    assert (held["status"], held["due_at"]) == ("queued", NOW + 30 * SECOND)
    assert held["status_reason"].startswith("held: webhook rate limit (csm-alerts: HTTP 429 rate_limited")
    assert held["hold_code"] == "webhook_rate_limit"
    assert alerts.tick(NOW + 10 * SECOND).dispatched.sent == 0
    assert len(slack.bodies) == 1  # nothing reaches Slack before its Retry-After

    after = alerts.tick(NOW + 30 * SECOND)
    alerts.tick(NOW + 60 * SECOND)

    assert after.dispatched.sent == 1
    [delivery] = world.rows(d)
    assert (delivery["status"], delivery["provider"]) == ("sent", "http")
    assert len(slack.bodies) == 2 and slack.bodies[0] == slack.bodies[1]  # the one message, sent once more


def test_after_a_429_the_other_messages_of_the_pass_to_that_webhook_wait_without_calling_it(
    world: World, slack: Endpoint
) -> None:
    world.journey(NOTIFY)
    contacts = world.people(3)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in contacts))
    slack.answers = [(429, {"Retry-After": "2"})]
    alerts = engine(world, slack.url)

    report = alerts.tick(NOW)

    assert (report.dispatched.rate_limited, report.dispatched.held) == (1, 2)
    assert len(slack.bodies) == 1
    assert {(r["status"], r["due_at"]) for r in world.rows(d)} == {("queued", NOW + 2 * SECOND)}
    assert alerts.tick(NOW + 2 * SECOND).dispatched.sent == 3
    assert len(slack.bodies) == 4


def test_values_in_the_text_are_escaped_for_slack_so_a_name_like_channel_pings_no_one(
    world: World, slack: Endpoint
) -> None:
    world.journey(NOTIFY)
    world.accounts({"id": "evil", "name": "<!channel> & <@U123>", "plan": "pro"})
    world.contacts({"id": "c1", "account_id": "evil", "email": "a@example.com", "first_name": "<!here>"})
    world.events({"contact_id": "c1", "name": "signed_up", "timestamp": NOW})

    engine(world, slack.url).tick(NOW)

    [body] = slack.bodies
    assert body["text"] == (
        "<https://crm.example/a|&lt;!channel&gt; &amp; &lt;@U123&gt;>: &lt;!here&gt; signed up"
    )  # the journey's own link markup is kept; only the values are escaped


def test_a_target_that_is_not_slack_can_take_the_text_unescaped(world: World, slack: Endpoint) -> None:
    world.journey(NOTIFY)
    world.accounts({"id": "acme", "name": "A & B <co>", "plan": "pro"})
    world.contacts({"id": "c1", "account_id": "acme", "email": "a@example.com", "first_name": "Ada"})
    world.events({"contact_id": "c1", "name": "signed_up", "timestamp": NOW})

    engine(world, slack.url, escape="none").tick(NOW)

    [body] = slack.bodies
    assert body["text"] == "<https://crm.example/a|A & B <co>>: Ada signed up"


def test_preview_shows_the_notify_text_escaped_as_it_will_be_sent(world: World) -> None:
    world.journey(NOTIFY)
    world.accounts({"id": "evil", "name": "<!channel>", "plan": "pro"})
    world.contacts({"id": "c1", "account_id": "evil", "email": "a@example.com", "first_name": "Ada"})

    shown = world.cli("preview", "alert", "tell-csm", "--contact", "c1")

    assert shown.exit_code == 0, shown.output
    assert "<https://crm.example/a|&lt;!channel&gt;>: Ada signed up" in shown.output


def test_a_retry_after_given_as_an_http_date_is_a_wait_from_its_arrival_not_a_date_on_the_engines_clock(
    world: World, slack: Endpoint
) -> None:
    world.journey(NOTIFY)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    later = format_datetime(SystemClock().now() + 20 * SECOND, usegmt=True)  # the webhook's wall clock
    slack.answers = [(429, {"Retry-After": later})]
    alerts = engine(world, slack.url)

    began = SystemClock().now()
    alerts.tick(NOW)  # an instant months before the wall clock
    ended = SystemClock().now()

    [held] = world.rows(d)
    until = parsedate_to_datetime(later)  # whole seconds, as the header has it
    assert held["status"] == "queued"
    assert NOW + (until - ended) - SECOND <= held["due_at"] <= NOW + (until - began) + SECOND
