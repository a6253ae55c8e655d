"""SendGrid's signed Event Webhook on the API served on 127.0.0.1: SendGrid's own published test vector,
events the test signs with its own P-256 key for messages the engine really sent (through the
SendGrid-compatible server), rejected requests that write nothing, and retries in any order that
change nothing."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from engine_world import NOW, World
from sqlalchemy import insert
from test_delivery_sendgrid import JOURNEY

from engagement import config
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.delivery import suppression
from engagement.delivery.message import OutboundEmail
from engagement.delivery.recording import RecordingEmail
from engagement.delivery.sendgrid import SendgridEmail
from engagement.store import schema
from engagement.testing.sendgrid_server import SendgridServer
from engagement.testing.served import served

d, r, s, c = schema.deliveries, schema.responses, schema.suppressions, schema.contacts
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid's published test vector (sendgrid-python, test/unit/test_eventwebhook.py)
VECTOR_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3G"  # split for line length
    "Rqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
VECTOR_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWH"  # split for line length
    "w8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
VECTOR_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
VECTOR_TIMESTAMP = "1600112502"
VECTOR_BODY = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def public_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def keyed(settings: config.Settings, key: str, **more: Any) -> config.Settings:
    """The settings with another webhook verification key (and other webhook settings)."""
    hooks = settings.webhooks.model_copy(update={"sendgrid": config.SendgridWebhook(public_key=key, **more)})
    return settings.model_copy(update={"webhooks": hooks})


# the hooked app's clock (NOW + 2h): SendGrid signs each request when it sends it
SIGNED_AT = str(int((NOW + timedelta(hours=2)).timestamp()))


def signed(body: bytes, key: ec.EllipticCurvePrivateKey = KEY, timestamp: str = SIGNED_AT) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: timestamp}


def encode(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()


@dataclass
class Hooked:
    """A world whose API takes SendGrid events, with the messages the engine sent through SendGrid."""

    world: World
    url: str
    http: httpx.Client
    sent: dict[str, dict[str, Any]]  # contact id → delivery row
    payloads: dict[str, dict[str, Any]]  # delivery id → the mail/send body SendGrid got

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(f"{self.url}/webhooks/sendgrid", content=body, headers=headers)

    def send(self, events: list[dict[str, Any]]) -> httpx.Response:
        """Post events signed with the configured key."""
        body = encode(events)
        return self.post(body, signed(body))

    def event(self, contact_id: str, kind: str, at: int, **fields: Any) -> dict[str, Any]:
        """An event as SendGrid posts it: our custom_args echoed at the top level."""
        row = self.sent[contact_id]
        return {
            "email": f"{contact_id}@example.com",
            "event": kind,
            "timestamp": at,
            "sg_event_id": f"ev-{contact_id}-{kind}-{at}-{fields.get('url', '')}",
            "sg_message_id": f"{row['provider_message_id']}.filterdrecv-5645d9c87f-abcde-1-2.0",
            **self.payloads[row["id"]]["custom_args"],
            **fields,
        }

    def state(self) -> dict[str, Any]:
        """Everything the webhook may change, without surrogate keys."""
        responses = sorted(
            (x["delivery_id"], x["kind"], x["occurred_at"], x["dedupe_key"], x["provider_event_id"])
            for x in self.world.rows(r)
        )
        deliveries = sorted((x["id"], x["status"], x["status_reason"]) for x in self.world.rows(d))
        suppressed = sorted((x["email"], x["reason"], x["source"]) for x in self.world.rows(s))
        contacts = sorted((x["id"], x["unsubscribed_at"]) for x in self.world.rows(c))
        return {
            "responses": responses,
            "deliveries": deliveries,
            "suppressions": suppressed,
            "contacts": contacts,
        }


@pytest.fixture
def hooked(world: World, server: SendgridServer) -> Iterator[Hooked]:
    world.configure(f'[webhooks.sendgrid]\npublic_key = "{public_text(KEY)}"\n')
    world.journey(JOURNEY)
    ids = world.people(4)
    world.events(*({"contact_id": cid, "name": "signed_up", "timestamp": NOW} for cid in ids))
    provider = SendgridEmail(server.api_key, server.url, timeout=5)
    try:
        assert world.engine_with(provider).tick(NOW).dispatched.sent == 4
    finally:
        provider.close()
    sent = {row["contact_id"]: dict(row) for row in world.rows(d)}
    payloads = {p["custom_args"]["delivery_id"]: p for p in server.received()}
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW + timedelta(hours=2)))
    with served(app) as url, httpx.Client(timeout=10) as http:
        yield Hooked(world, url, http, sent, payloads)


def batch_of_everything(h: Hooked) -> list[dict[str, Any]]:
    at = int(NOW.timestamp())
    return [
        h.event("c000", "processed", at),
        h.event("c000", "delivered", at + 5),
        h.event("c000", "open", at + 60),
        h.event("c000", "click", at + 90, url="https://app.chartwell.example/reports"),
        h.event("c000", "click", at + 90, url="https://app.chartwell.example/settings"),
        h.event("c001", "deferred", at + 5, attempt="1", response="421 try later"),
        h.event("c001", "bounce", at + 600, type="bounce", reason="550 5.1.1 no such user", status="5.1.1"),
        h.event("c002", "delivered", at + 5),
        h.event("c002", "spamreport", at + 3600),
        h.event("c003", "delivered", at + 5),
        h.event("c003", "group_unsubscribe", at + 7200, asm_group_id=42),
        {
            "email": "stranger@example.org",
            "event": "bounce",
            "type": "bounce",
            "timestamp": at,
            "sg_event_id": "ev-stranger",
            "sg_message_id": "NotOurs123.filterdrecv-1",
        },
    ]


def test_sendgrids_published_test_vector_is_verified_and_applied(hooked: Hooked) -> None:
    """The vector's event is a drop for a bounced address of message LRzXl_NHStOGhQ4kofSm_A."""
    h = hooked
    with h.world.db.begin() as conn:
        row = {**h.sent["c000"], "id": "vector-delivery", "step_id": "vector", "recipient": "hello@world.com"}
        conn.execute(insert(d).values({**row, "provider_message_id": "LRzXl_NHStOGhQ4kofSm_A"}))
    vector_time = datetime.fromtimestamp(int(VECTOR_TIMESTAMP), tz=UTC)  # when SendGrid signed it
    app = create_app(keyed(h.world.settings, VECTOR_KEY), database=h.world.db, clock=ManualClock(vector_time))
    with served(app) as url:
        post = f"{url}/webhooks/sendgrid"
        vector = {SIGNATURE: VECTOR_SIGNATURE, TIMESTAMP: VECTOR_TIMESTAMP}
        before = h.state()
        assert h.http.post(post, content=VECTOR_BODY + b" ", headers=vector).status_code == 403
        assert (
            h.http.post(post, content=VECTOR_BODY, headers={**vector, TIMESTAMP: "1600112503"}).status_code
            == 403
        )
        assert h.state() == before

        answer = h.http.post(post, content=VECTOR_BODY, headers=vector)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "received": 1,
        "recorded": 1,
        "duplicates": 0,
        "unknown": 0,
        "ignored": 0,
        "suppressed": 1,
    }
    [delivery] = h.world.rows(d, d.c.id == "vector-delivery")
    assert (delivery["status"], delivery["status_reason"]) == ("dropped", "dropped: Bounced Address")
    [response] = h.world.rows(r)
    assert (response["delivery_id"], response["kind"], response["occurred_at"].timestamp()) == (
        "vector-delivery",
        "dropped",
        1600112492,
    )
    assert response["provider_event_id"] == "sendgrid:ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA"
    [suppressed] = h.world.rows(s)
    assert (suppressed["email"], suppressed["reason"]) == ("hello@world.com", "bounce")


def test_the_published_vector_under_another_key_is_refused_and_writes_nothing(hooked: Hooked) -> None:
    h = hooked
    app = create_app(keyed(h.world.settings, VECTOR_OTHER_KEY), database=h.world.db, clock=ManualClock(NOW))
    before = h.state()
    with served(app) as url:
        answer = h.http.post(
            f"{url}/webhooks/sendgrid",
            content=VECTOR_BODY,
            headers={SIGNATURE: VECTOR_SIGNATURE, TIMESTAMP: VECTOR_TIMESTAMP},
        )
    assert answer.status_code == 403 and "signature does not match" in answer.json()["detail"]
    assert h.state() == before


def test_signed_events_update_deliveries_responses_suppressions_and_unsubscribes(hooked: Hooked) -> None:
    h = hooked
    answer = h.send(batch_of_everything(h))

    assert answer.status_code == 200, answer.text
    counts = answer.json()
    assert counts == {
        "received": 12,
        "recorded": 10,
        "duplicates": 0,
        "unknown": 1,
        "ignored": 1,
        "suppressed": 4,
    }
    status = {cid: (row["status"], row["status_reason"]) for cid, row in _deliveries(h).items()}
    assert status == {
        "c000": ("delivered", None),
        "c001": ("bounced", "bounce: bounce 5.1.1 550 5.1.1 no such user"),
        "c002": ("delivered", None),
        "c003": ("delivered", None),
    }
    kinds = sorted((x["contact_id"], x["kind"]) for x in h.world.rows(r))
    assert kinds == [
        ("c000", "click"),
        ("c000", "click"),
        ("c000", "delivered"),
        ("c000", "open"),
        ("c001", "bounce"),
        ("c001", "deferred"),
        ("c002", "delivered"),
        ("c002", "spamreport"),
        ("c003", "delivered"),
        ("c003", "group_unsubscribe"),
    ]
    [click] = [x for x in h.world.rows(r) if x["kind"] == "click" and "reports" in x["data"]["url"]]
    assert (click["journey_id"], click["step_id"]) == ("welcome", "hello")
    suppressed = {x["email"]: x["reason"] for x in h.world.rows(s)}
    assert suppressed == {
        "c001@example.com": "bounce",
        "c002@example.com": "complaint",
        "c003@example.com": "unsubscribe",
        "stranger@example.org": "bounce",
    }
    unsubscribed = {x["id"]: x["unsubscribed_at"] for x in h.world.rows(c) if x["unsubscribed_at"]}
    assert unsubscribed == {"c003": NOW + timedelta(seconds=7200)}


def test_the_same_batch_posted_three_times_in_any_order_leaves_the_state_of_one_post(
    hooked: Hooked, world: World
) -> None:
    h = hooked
    events = batch_of_everything(h)
    once = h.send(events)
    assert once.status_code == 200
    after_one = h.state()

    rng = random.Random(7)
    for _ in range(3):
        shuffled = events[:]
        rng.shuffle(shuffled)
        again = h.send(shuffled)
        assert again.status_code == 200
        assert again.json()["recorded"] == 0 and again.json()["duplicates"] == 10

    assert h.state() == after_one


def test_a_retry_with_a_new_event_id_or_the_same_id_is_not_recorded_twice(hooked: Hooked) -> None:
    h = hooked
    at = int(NOW.timestamp())
    first = h.event("c000", "open", at + 60)
    new_id = {**first, "sg_event_id": "a-fresh-id-for-the-same-open"}
    same_id_later = {**first, "timestamp": at + 61}
    for events in ([first], [new_id], [same_id_later]):
        assert h.send(events).status_code == 200
    assert [x["kind"] for x in h.world.rows(r)] == ["open"]


def test_a_delivery_status_only_moves_forward_and_a_bounce_wins(hooked: Hooked) -> None:
    h = hooked
    at = int(NOW.timestamp())
    steps = [
        ("c000", h.event("c000", "deferred", at + 1), "deferred"),
        ("c000", h.event("c000", "delivered", at + 2), "delivered"),
        ("c000", h.event("c000", "open", at + 3), "delivered"),
        ("c000", h.event("c000", "deferred", at + 4), "delivered"),
        ("c000", h.event("c000", "bounce", at + 5, type="bounce", reason="mailbox gone"), "bounced"),
        ("c000", h.event("c000", "delivered", at + 6), "bounced"),
        ("c001", h.event("c001", "bounce", at + 1, type="blocked", reason="blocked by receiver"), "bounced"),
    ]
    for contact_id, event, expected in steps:
        assert h.send([event]).status_code == 200
        assert _deliveries(h)[contact_id]["status"] == expected, event["event"]
    # a block is the receiver refusing for now, not a bad address: no suppression
    assert {x["email"] for x in h.world.rows(s)} == {"c000@example.com"}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("tampered body", 403),
        ("wrong key", 403),
        ("no signature header", 401),
        ("no timestamp header", 401),
        ("no headers", 401),
        ("signature not base64", 403),
        ("other timestamp", 403),
    ],
)
def test_a_request_that_is_not_signed_by_sendgrid_is_rejected_and_writes_nothing(
    hooked: Hooked, change: str, status: int
) -> None:
    h = hooked
    body = encode(batch_of_everything(h))
    headers = signed(body)
    if change == "tampered body":
        body = body.replace(b'"delivered"', b'"bounce"', 1)
    elif change == "wrong key":
        headers = signed(body, OTHER_KEY)
    elif change == "no signature header":
        del headers[SIGNATURE]
    elif change == "no timestamp header":
        del headers[TIMESTAMP]
    elif change == "no headers":
        headers = {}
    elif change == "signature not base64":
        headers[SIGNATURE] = "not*base64*at*all"
    elif change == "other timestamp":
        headers[TIMESTAMP] = "1772445601"
    before = h.state()

    answer = h.post(body, headers)

    assert answer.status_code == status
    assert answer.json()["detail"]
    assert h.state() == before


def test_bad_json_wrong_types_and_oversized_bodies_are_refused_with_a_clear_message(hooked: Hooked) -> None:
    h = hooked
    before = h.state()
    bad_json = b'[{"event": "open",'
    answer = h.post(bad_json, signed(bad_json))
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["detail"]

    events = batch_of_everything(h)
    events[3]["timestamp"] = "yesterday"
    answer = h.send(events)
    assert answer.status_code == 422
    assert [p["field"] for p in answer.json()["detail"]] == ["[3].timestamp"]

    small = keyed(h.world.settings, public_text(KEY), max_body_bytes=2048)
    app = create_app(small, database=h.world.db, clock=ManualClock(NOW))
    with served(app) as url:
        big = encode(batch_of_everything(h) * 3)
        answer = h.http.post(f"{url}/webhooks/sendgrid", content=big, headers=signed(big))
        assert answer.status_code == 413 and "2,048 bytes" in answer.json()["detail"]
        streamed = h.http.post(
            f"{url}/webhooks/sendgrid", content=iter([big[:1500], big[1500:]]), headers=signed(big)
        )
        assert streamed.status_code == 413  # no Content-Length: the cap holds while reading
    assert h.state() == before


def test_without_a_configured_key_the_webhook_refuses_everything(world: World) -> None:
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW))
    with served(app) as url, httpx.Client() as http:
        answer = http.post(f"{url}/webhooks/sendgrid", content=VECTOR_BODY, headers=signed(VECTOR_BODY))
    assert answer.status_code == 503 and "webhooks.sendgrid.public_key" in answer.json()["detail"]


def _deliveries(h: Hooked) -> dict[str, dict[str, Any]]:
    return {row["contact_id"]: dict(row) for row in h.world.rows(d)}


class EventsFirst(RecordingEmail):
    """Sends, then has SendGrid's `delivered` event reach the webhook before the provider call returns."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        super().__init__()
        self.url, self.http = url, http

    def send(self, message: OutboundEmail) -> str:
        message_id = super().send(message)
        body = encode(
            [
                {
                    "email": message.to,
                    "event": "delivered",
                    "timestamp": 1772445660,
                    "sg_event_id": f"early-{message.delivery_id}",
                    "sg_message_id": f"{message_id}.filterdrecv-1",
                    **message.custom_args,
                }
            ]
        )
        headers = signed(body, timestamp="1772445660")  # signed at the app's time
        answer = self.http.post(f"{self.url}/webhooks/sendgrid", content=body, headers=headers)
        assert answer.status_code == 200 and answer.json()["recorded"] == 1, answer.text
        return message_id


def test_an_event_that_arrives_while_the_email_is_still_sending_is_not_undone_by_the_send(
    world: World,
) -> None:
    world.configure(f'[webhooks.sendgrid]\npublic_key = "{public_text(KEY)}"\n')
    world.journey(JOURNEY)
    ids = world.people(3)
    world.events(*({"contact_id": cid, "name": "signed_up", "timestamp": NOW} for cid in ids))
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW + timedelta(minutes=1)))
    with served(app) as url, httpx.Client(timeout=10) as http:
        assert world.engine_with(EventsFirst(url, http)).tick(NOW).dispatched.sent == 3

    rows = world.rows(d)
    assert {row["status"] for row in rows} == {"delivered"}  # not moved back to `sent`
    assert all(row["provider_message_id"] == f"recorded-{row['id']}" and row["sent_at"] for row in rows)


def test_a_batch_signed_too_long_ago_or_ahead_is_refused_and_writes_nothing(hooked: Hooked) -> None:
    h = hooked
    body = encode(batch_of_everything(h))
    app_now = NOW + timedelta(hours=2)
    before = h.state()
    for signed_at in (
        datetime(2023, 5, 1, tzinfo=UTC),
        app_now - timedelta(minutes=11),
        app_now + timedelta(minutes=11),
    ):
        answer = h.post(body, signed(body, timestamp=str(int(signed_at.timestamp()))))
        assert answer.status_code == 403, answer.text
        assert "webhooks.sendgrid.tolerance" in answer.json()["detail"]
    assert h.post(body, signed(body, timestamp="soon")).status_code == 403
    assert h.state() == before

    answer = h.post(body, signed(body, timestamp=str(int((app_now - timedelta(minutes=9)).timestamp()))))
    assert answer.status_code == 200 and answer.json()["recorded"] == 10


def test_the_tolerance_is_configurable(hooked: Hooked) -> None:
    h = hooked
    body = encode(batch_of_everything(h))
    old = signed(
        body, timestamp=str(int((NOW + timedelta(hours=1)).timestamp()))
    )  # an hour before the app's now
    assert h.post(body, old).status_code == 403
    patient = keyed(h.world.settings, public_text(KEY), tolerance=timedelta(hours=2))
    with served(create_app(patient, database=h.world.db, clock=ManualClock(NOW + timedelta(hours=2)))) as url:
        answer = h.http.post(f"{url}/webhooks/sendgrid", content=body, headers=old)
    assert answer.status_code == 200 and answer.json()["recorded"] == 10


def test_a_replayed_unsubscribe_does_not_undo_a_manual_removal_but_a_newer_one_suppresses_again(
    hooked: Hooked,
) -> None:
    h = hooked
    at = NOW + timedelta(hours=2)
    clock = ManualClock(at)
    unsubscribed = encode([h.event("c003", "unsubscribe", int(at.timestamp()) - 60)])
    unsubscribe_body = unsubscribed
    captured = signed(unsubscribe_body, timestamp=str(int(at.timestamp())))
    with served(create_app(h.world.settings, database=h.world.db, clock=clock)) as url:
        post = f"{url}/webhooks/sendgrid"
        assert h.http.post(post, content=unsubscribe_body, headers=captured).json()["suppressed"] == 1
        with h.world.db.begin() as conn:  # what `engagement suppressions remove` does, a minute later
            assert suppression.remove(h.world.db, conn, "c003@example.com", at + timedelta(minutes=1))
        clock.set(at + timedelta(minutes=3))

        replayed = h.http.post(post, content=unsubscribe_body, headers=captured)  # within the tolerance

        assert replayed.status_code == 200 and replayed.json()["suppressed"] == 0
        assert h.world.rows(s) == []
        newer = encode([h.event("c003", "unsubscribe", int((at + timedelta(minutes=2)).timestamp()))])
        answer = h.http.post(
            post, content=newer, headers=signed(newer, timestamp=str(int(clock.now().timestamp())))
        )
    assert answer.json()["suppressed"] == 1
    assert [(x["email"], x["reason"]) for x in h.world.rows(s)] == [("c003@example.com", "unsubscribe")]


def test_suppressions_remove_on_the_command_line_remembers_the_removal_by_hash(world: World) -> None:
    world.suppress("ada@example.com")

    result = world.cli("suppressions", "remove", "Ada@example.com")

    assert result.exit_code == 0, result.output
    [removal] = world.rows(schema.suppression_removals)
    assert removal["email_hash"] == suppression.address_hash("ada@example.com")
    assert world.rows(s) == []
