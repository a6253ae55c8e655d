"""The engine sending journeys through SendGrid, against the SendGrid-compatible server on 127.0.0.1: every
answer (202, 400, 429, 500, a slow 202) ends in the right delivery state, and nothing is accepted twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_world import NOW, World, one_email

from engagement import config
from engagement.clock import ManualClock
from engagement.delivery.sendgrid import SendgridEmail
from engagement.engine import Engine
from engagement.evaluation.tick import TickReport
from engagement.store import schema
from engagement.testing.sendgrid_server import SendgridServer

d = schema.deliveries
RETRY = config.Retry(attempts=3, base_seconds=0.0, max_seconds=0.0)
MINUTE = timedelta(minutes=1)
ENGAGEMENT = Path(sys.executable).parent / "engagement"  # the installed console script
JOURNEY = one_email()


class Sending:
    """A world whose engine sends through SendGrid, with a clock the test moves."""

    def __init__(
        self, world: World, server: SendgridServer, provider: SendgridEmail, clock: ManualClock
    ) -> None:
        self.world, self.server, self.provider, self.clock = world, server, provider, clock
        self.engine: Engine = world.engine_with(provider, clock)

    def tick(self, at: datetime) -> TickReport:
        self.clock.set(at)
        return self.engine.tick(at)

    def sign_up(self, *contact_ids: str, at: datetime = NOW) -> None:
        self.world.events(*({"contact_id": cid, "name": "signed_up", "timestamp": at} for cid in contact_ids))

    def delivery(self, contact_id: str) -> dict[str, Any]:
        [row] = self.world.rows(d, d.c.contact_id == contact_id)
        return dict(row)

    def requests_for(self, delivery_id: str) -> list[int]:
        return [r.status for r in self.server.ledger.requests() if r.delivery_id == delivery_id]


@pytest.fixture
def sending(world: World, server: SendgridServer) -> Iterator[Callable[..., Sending]]:
    made: list[SendgridEmail] = []

    def make(*, timeout: float = 5.0) -> Sending:
        clock = ManualClock(NOW)
        provider = SendgridEmail(
            server.api_key, server.url, timeout=timeout, retry=RETRY, sleep=lambda _: None, clock=clock.now
        )
        made.append(provider)
        world.journey(JOURNEY)
        return Sending(world, server, provider, clock)

    yield make
    for provider in made:
        provider.close()


def test_an_accepted_email_is_sent_with_sendgrids_message_id_and_carries_our_ids(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending()
    world.people(2)
    run.sign_up("c000", "c001")

    report = run.tick(NOW)

    assert report.dispatched.sent == 2
    accepted = {a.delivery_id: a.message_id for a in server.ledger.accepted()}
    for contact_id in ("c000", "c001"):
        row = run.delivery(contact_id)
        assert (row["status"], row["provider"], row["sent_at"]) == ("sent", "sendgrid", NOW)
        assert row["provider_message_id"] == accepted[row["id"]]
    payloads = {p["custom_args"]["delivery_id"]: p for p in server.received()}
    row = run.delivery("c000")
    mail = payloads[row["id"]]
    assert mail["custom_args"] == {"delivery_id": row["id"], "journey_id": "welcome", "step_id": "hello"}
    assert mail["categories"] == ["welcome", "welcome/hello"]
    assert mail["personalizations"] == [{"to": [{"email": "c000@example.com", "name": "C000"}]}]
    assert mail["subject"] == "Welcome aboard, C000"
    assert mail["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [c["type"] for c in mail["content"]] == ["text/plain", "text/html"]


def test_an_address_sendgrid_refuses_fails_permanently_with_sendgrids_reason_and_is_not_retried(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending()
    world.people(1)
    world.contacts({"id": "odd", "account_id": "acme", "email": "ada;lovelace@example.com"})
    run.sign_up("c000", "odd")

    report = run.tick(NOW)
    run.tick(NOW + MINUTE)

    assert (report.dispatched.sent, report.dispatched.failed) == (1, 1)
    assert report.dispatched.sent_ids == [run.delivery("c000")["id"]]  # the failed one is not in it
    row = run.delivery("odd")
    assert row["status"] == "failed"
    assert row["status_reason"] == (
        "SendGrid 400: Does not contain a valid address. (personalizations.0.to.0.email)"
    )
    assert row["provider_message_id"] is None and row["sent_at"] is None
    assert run.requests_for(row["id"]) == [400]
    assert run.delivery("c000")["status"] == "sent"


def test_a_429_holds_every_email_until_the_reset_and_nothing_reaches_sendgrid_before_it(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending()
    world.people(4)
    run.sign_up("c000", "c001", "c002")
    reset = NOW + 2 * MINUTE
    server.rate_limit_next(1, reset_at=int(reset.timestamp()))

    report = run.tick(NOW)

    assert report.dispatched.rate_limited == 1 and report.dispatched.sent == 0
    rows = world.rows(d)
    assert {(r["status"], r["due_at"]) for r in rows} == {("queued", reset)}
    assert [r.status for r in server.ledger.requests()] == [429]

    run.sign_up("c003", at=NOW + MINUTE)  # a new email while SendGrid asked us to wait
    for at in (NOW + 30 * timedelta(seconds=1), NOW + MINUTE, reset - timedelta(seconds=1)):
        run.tick(at)
    assert [r.status for r in server.ledger.requests()] == [429]
    assert [r["status"] for r in world.rows(d)] == ["queued"] * 4

    after = run.tick(reset)

    assert after.dispatched.sent == 4
    assert {r["status"] for r in world.rows(d)} == {"sent"}
    assert sorted(r.status for r in server.ledger.requests()) == [202, 202, 202, 202, 429]


def test_a_429_whose_reset_has_already_passed_stops_sending_for_the_rest_of_the_tick(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending()
    world.people(3)
    run.sign_up("c000", "c001", "c002")
    server.rate_limit_next(
        50, reset_at=int((NOW - 5 * timedelta(seconds=1)).timestamp())
    )  # our clock runs ahead

    report = run.tick(NOW)

    assert report.dispatched.rate_limited == 1 and report.dispatched.sent == 0
    assert [r.status for r in server.ledger.requests()] == [429]
    assert {r["status"] for r in world.rows(d)} == {"queued"}
    server.clear_faults()
    assert run.tick(NOW + MINUTE).dispatched.sent == 3


def test_a_500_twice_then_202_is_sent_after_three_requests_and_accepted_once(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending()
    world.people(1)
    run.sign_up("c000")
    server.fail_next(2, 500)

    report = run.tick(NOW)

    row = run.delivery("c000")
    assert report.dispatched.sent == 1
    assert row["status"] == "sent"
    assert run.requests_for(row["id"]) == [500, 500, 202]
    assert [a.delivery_id for a in server.ledger.accepted()] == [row["id"]]
    assert row["provider_message_id"] == server.ledger.accepted()[0].message_id


def test_a_500_that_never_ends_fails_after_the_configured_attempts_and_later_ticks_leave_it(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending()
    world.people(1)
    run.sign_up("c000")
    server.fail_next(100, 500)

    report = run.tick(NOW)
    server.clear_faults()
    run.tick(NOW + MINUTE)

    row = run.delivery("c000")
    assert report.dispatched.failed == 1
    assert row["status"] == "failed"
    assert row["status_reason"] == "SendGrid 500: internal error (gave up after 3 attempts)"
    assert run.requests_for(row["id"]) == [500, 500, 500]
    assert server.ledger.accepted() == []


def test_a_response_slower_than_the_timeout_is_in_doubt_listed_by_the_cli_and_never_sent_again(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending(timeout=1.0)
    world.people(2)
    run.sign_up("c000")
    server.slow_next(1, delay=3.0)

    report = run.tick(NOW)

    row = run.delivery("c000")
    assert report.dispatched.in_doubt == 1
    assert row["status"] == "in_doubt"
    assert "no answer after the request was sent" in row["status_reason"]
    assert run.requests_for(row["id"]) == [202]  # SendGrid did accept it: retrying would double it

    listed = subprocess.run(
        [str(ENGAGEMENT), "--config", str(world.config_path), "deliveries", "--in-doubt"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    [line] = [x for x in listed.stdout.splitlines() if row["id"] in x]
    assert all(word in line for word in ("welcome", "hello", "c000", "in_doubt"))

    run.sign_up("c001", at=NOW + MINUTE)
    for minutes in (1, 15, 60, 24 * 60):
        run.tick(NOW + minutes * MINUTE)
    assert run.requests_for(row["id"]) == [202]
    assert run.delivery("c000")["status"] == "in_doubt"
    assert run.delivery("c001")["status"] == "sent"
    assert len(server.ledger.accepted()) == 2


def test_a_429_mid_batch_holds_the_rest_and_only_requests_already_in_flight_reach_sendgrid(
    world: World, server: SendgridServer, sending: Callable[..., Sending]
) -> None:
    run = sending()  # 8 connections: up to 8 requests in flight
    contacts = [f"c{i:03d}" for i in range(40)]
    world.people(40)
    run.sign_up(*contacts)
    server.slow_next(5, delay=0.0)  # five accepted, then the key's limit is spent
    reset = int(time.time()) + 3600
    server.rate_limit_until(reset_at=reset)

    report = run.tick(NOW)

    answers = [r.status for r in server.ledger.requests()]
    assert answers.count(202) == report.dispatched.sent == 5
    assert 1 <= answers.count(429) == report.dispatched.rate_limited <= 8  # each sender hears it at most once
    until = datetime.fromtimestamp(reset, UTC)
    held = [r for r in world.rows(d) if r["status"] == "queued"]
    assert len(held) == 35 and {r["due_at"] for r in held} == {until}

    server.clear_faults()
    after = run.tick(until)

    assert after.dispatched.sent == 35
    assert {r["status"] for r in world.rows(d)} == {"sent"}
    assert len(server.ledger.accepted()) == 40  # the fixture checks none twice
