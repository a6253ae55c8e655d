"""A provider's 429 under an injected clock: its wall-clock reset becomes a wait at receipt, measured on the
engine's clock, so ticks at an instant far from the wall clock (`tick --now`) pause as long as the provider
asked and then send, against the SendGrid-compatible server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from engine_world import NOW, World, one_email

from engagement import config
from engagement.clock import SystemClock
from engagement.delivery import pause
from engagement.delivery.sendgrid import SendgridEmail
from engagement.engine import Engine
from engagement.store import schema
from engagement.testing.sendgrid_server import SendgridServer

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

d = schema.deliveries
RETRY = config.Retry(attempts=1, base_seconds=0.0, max_seconds=0.0)
JOURNEY = one_email()


@pytest.fixture
def wall_engine(world: World, server: SendgridServer) -> Iterator[Engine]:
    """An engine as `engagement tick` builds it: the system clock, SendGrid on its own (wall) clock."""
    provider = SendgridEmail(server.api_key, server.url, timeout=5, retry=RETRY)
    world.journey(JOURNEY)
    yield world.engine_with(provider, SystemClock())
    provider.close()


def sign_up(world: World, count: int) -> list[str]:
    contacts = world.people(count)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in contacts))
    return contacts


def test_a_429_at_an_earlier_injected_instant_holds_for_the_providers_wait_not_until_its_wall_clock_reset(
    world: World, server: SendgridServer, wall_engine: Engine
) -> None:
    sign_up(world, 3)
    assert SystemClock().now() - timedelta(days=30) > NOW  # the injected instant is long before the wall's
    server.rate_limit_next(1, reset_after=30)  # X-RateLimit-Reset: the wall clock's epoch second + ~31 s

    report = wall_engine.tick(NOW)

    assert report.dispatched.rate_limited == 1 and report.dispatched.sent == 0
    held = world.rows(d)
    assert {r["status"] for r in held} == {"queued"}
    for row in held:  # about 30 s after the injected instant, not months after it
        assert NOW + timedelta(seconds=29) <= row["due_at"] <= NOW + timedelta(seconds=33)
    with world.db.begin() as conn:
        stored = pause.stored(conn, "sendgrid")
    assert stored is not None
    until, heard = stored
    assert timedelta(seconds=29) <= until - heard <= timedelta(seconds=33)  # the wait, on the engine's clock


def test_sixteen_ticks_at_one_injected_instant_against_a_429_every_fourth_request_send_each_message_once(
    world: World, server: SendgridServer, wall_engine: Engine
) -> None:
    contacts = sign_up(world, 24)
    server.rate_limit_every(4, window=1.0)  # SendGrid's 429 with X-RateLimit-Reset at the next second

    reports = []
    for tick in range(16):
        if tick:
            time.sleep(1.05)
        reports.append(wall_engine.tick(NOW))

    rows = world.rows(d)
    assert len(rows) == len(contacts)
    unsent = [r["status_reason"] for r in rows if r["status"] != "sent"]
    assert unsent == []
    answers = [r.status for r in server.ledger.requests()]
    assert answers.count(429) >= 2  # the limit was hit and recovered from, more than once
    accepted = [str(a.delivery_id) for a in server.ledger.accepted()]
    assert sorted(accepted) == sorted(r["id"] for r in rows)  # each exactly once (the fixture checks too)
    assert sum(r.dispatched.sent for r in reports) == len(contacts)
