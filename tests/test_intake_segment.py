"""Segment-compatible intake on the API served on 127.0.0.1: Segment's own Python SDK lands contacts,
accounts, events and milestones, and the tracked event enrolls the contact on the next tick; bad
requests are refused with a clear message and write nothing."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from engine_world import NOW, World
from segment.analytics import Client

from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.store import schema
from engagement.testing.served import served

a, c, e, m, am = schema.accounts, schema.contacts, schema.events, schema.milestones, schema.account_milestones
WRITE_KEY = "wk-test-1"
RECEIVED = NOW + timedelta(hours=1)  # the API's clock
JOURNEY = """
id: welcome-on-signup
name: Welcome on signup
status: active
trigger: {event: signed_up}
steps:
  - id: hello
    email: {template: onboarding/welcome, subject: "Welcome aboard, {{ contact.first_name }}"}
"""


@dataclass
class Intake:
    """A world whose API takes Segment calls."""

    world: World
    url: str
    http: httpx.Client

    def post(self, path: str, payload: Any, *, key: str | None = WRITE_KEY, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        if "content" not in kwargs:
            kwargs["json"] = payload
        return self.http.post(f"{self.url}{path}", headers=headers, **kwargs)

    def state(self) -> dict[str, Any]:
        w = self.world
        return {
            name: sorted(map(str, w.rows(table)))
            for name, table in (
                ("a", a),
                ("c", c),
                ("e", e),
                ("m", m),
                ("am", am),
                ("seen", schema.intake_messages),
            )
        }


@pytest.fixture
def intake(world: World) -> Iterator[Intake]:
    world.configure(f'[api]\nwrite_keys = ["{WRITE_KEY}"]\n')
    app = create_app(world.settings, database=world.db, clock=ManualClock(RECEIVED))
    with served(app) as url, httpx.Client(timeout=10) as http:
        yield Intake(world, url, http)


def test_segments_python_sdk_lands_contact_account_events_and_milestones_and_the_event_enrolls(
    intake: Intake,
) -> None:
    world = intake.world
    world.journey(JOURNEY)
    failures: list[Any] = []
    sdk = Client(
        WRITE_KEY, host=intake.url, on_error=lambda error, batch: failures.append(error), max_retries=0
    )
    sdk.identify(
        "u-ada",
        {
            "email": "ada@chartwell-customer.example",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "role": "admin",
            "favourite_chart": "sparkline",
        },
        timestamp=NOW - timedelta(minutes=10),
        context={"timezone": "Europe/London"},
    )
    sdk.group(
        "u-ada",
        "acct-analytical",
        {"name": "Analytical Engines Ltd", "plan": "pro", "mrr": 450, "industry": "computing"},
        timestamp=NOW - timedelta(minutes=9),
    )
    _, tracked = sdk.track(
        "u-ada", "signed_up", {"source": "web", "trial": True}, timestamp=NOW - timedelta(minutes=5)
    )
    sdk.track("u-ada", "first_login", timestamp=NOW - timedelta(minutes=4))
    sdk.flush()
    sdk.shutdown()
    assert failures == []

    [contact] = world.rows(c)
    assert (
        contact["id"],
        contact["account_id"],
        contact["email"],
        contact["first_name"],
        contact["last_name"],
    ) == (
        "u-ada",
        "acct-analytical",
        "ada@chartwell-customer.example",
        "Ada",
        "Lovelace",
    )
    assert (contact["role"], contact["timezone"], contact["traits"]) == (
        "admin",
        "Europe/London",
        {"favourite_chart": "sparkline"},
    )
    [account] = world.rows(a, a.c.id == "acct-analytical")
    assert (account["name"], account["plan"], account["mrr"], account["touch"], account["traits"]) == (
        "Analytical Engines Ltd",
        "pro",
        450.0,
        "tech",
        {"industry": "computing"},
    )
    events = {row["name"]: row for row in world.rows(e)}
    assert set(events) == {"signed_up", "first_login"}
    signed_up = events["signed_up"]
    assert (signed_up["event_id"], signed_up["contact_id"], signed_up["account_id"]) == (
        tracked["messageId"],
        "u-ada",
        "acct-analytical",
    )
    assert (signed_up["timestamp"], signed_up["received_at"]) == (NOW - timedelta(minutes=5), RECEIVED)
    assert signed_up["properties"] == {"source": "web", "trial": True}
    assert {(r["contact_id"], r["name"], r["reached_at"]) for r in world.rows(m)} == {
        ("u-ada", "signed_up", NOW - timedelta(minutes=5)),
        ("u-ada", "first_login", NOW - timedelta(minutes=4)),
    }
    assert {(r["account_id"], r["name"]) for r in world.rows(am)} == {
        ("acct-analytical", "signed_up"),
        ("acct-analytical", "first_login"),
    }

    report = world.tick(NOW)

    enrollments = world.rows(schema.enrollments)
    assert [(x["journey_id"], x["subject_id"]) for x in enrollments] == [("welcome-on-signup", "u-ada")]
    assert report.dispatched.sent == 1
    assert [msg.to for msg in world.email.sent] == ["ada@chartwell-customer.example"]


def test_a_contact_identified_before_its_group_waits_in_the_unassigned_account_then_moves_with_its_history(
    intake: Intake,
) -> None:
    world = intake.world
    calls = [
        {"type": "identify", "userId": "u-1", "traits": {"email": "one@example.com"}, "messageId": "m1"},
        {
            "type": "track",
            "userId": "u-1",
            "event": "first_login",
            "messageId": "m2",
            "timestamp": "2026-03-02T09:00:00Z",
        },
        {"type": "track", "userId": "u-2", "event": "first_login", "messageId": "m3"},
    ]
    answer = intake.post("/v1/batch", {"batch": calls})
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"] == 2
    [contact] = world.rows(c)
    assert contact["account_id"] == "unassigned"
    [placeholder] = world.rows(a)
    assert (placeholder["id"], placeholder["name"]) == ("unassigned", "(no account yet)")
    # an event for someone never identified is kept under its user id, with no account yet
    [stray] = world.rows(e, e.c.contact_id == "u-2")
    assert stray["account_id"] is None and stray["timestamp"] == RECEIVED  # no timestamp: the API's clock

    answer = intake.post("/v1/group", {"userId": "u-1", "groupId": "acct-1", "traits": {"name": "One"}})
    assert answer.status_code == 200, answer.text
    answer = intake.post("/v1/group", {"userId": "u-2", "groupId": "acct-1"})
    assert answer.status_code == 200, answer.text

    assert {r["id"]: r["account_id"] for r in world.rows(c)} == {"u-1": "acct-1", "u-2": "acct-1"}
    assert {r["event_id"]: r["account_id"] for r in world.rows(e)} == {"m2": "acct-1", "m3": "acct-1"}
    assert {r["contact_id"]: r["account_id"] for r in world.rows(m)} == {"u-1": "acct-1", "u-2": "acct-1"}
    [first] = world.rows(am, am.c.account_id == "acct-1")
    assert (first["account_id"], first["name"], first["reached_at"]) == (
        "acct-1",
        "first_login",
        NOW - timedelta(hours=1),
    )


def test_identify_traits_merge_and_a_company_trait_puts_the_contact_in_that_account(intake: Intake) -> None:
    world = intake.world
    assert (
        intake.post("/v1/identify", {"userId": 7, "traits": {"plan_interest": "pro", "seats": 3}}).status_code
        == 200
    )
    answer = intake.post(
        "/v1/identify",
        {
            "userId": "7",
            "traits": {"seats": 5, "name": "Grace", "company": {"id": 42, "name": "Navy", "plan": "team"}},
        },
    )
    assert answer.status_code == 200, answer.text
    [contact] = world.rows(c)
    assert (contact["id"], contact["account_id"]) == ("7", "42")
    assert contact["traits"] == {"plan_interest": "pro", "seats": 5, "name": "Grace"}
    [account] = world.rows(a, a.c.id == "42")
    assert (account["name"], account["plan"]) == ("Navy", "team")


def test_a_messageid_is_applied_once_even_when_posted_again_later(intake: Intake) -> None:
    world = intake.world
    first = {"type": "identify", "userId": "u-1", "traits": {"tier": "old"}, "messageId": "id-1"}
    second = {"type": "identify", "userId": "u-1", "traits": {"tier": "new"}, "messageId": "id-2"}
    event = {
        "type": "track",
        "userId": "u-1",
        "event": "report_created",
        "messageId": "id-3",
        "timestamp": "2026-03-02T08:00:00Z",
    }
    assert intake.post("/v1/batch", {"batch": [first, event, event]}).json()["events"] == 1
    assert intake.post("/v1/batch", {"batch": [second]}).status_code == 200
    replay = intake.post("/v1/batch", {"batch": [first, event]})

    assert replay.status_code == 200
    assert replay.json() | {"success": True} == {
        "success": True,
        "received": 2,
        "duplicates": 1,
        "skipped": 0,
        "accounts": 0,
        "contacts": 0,
        "events": 0,
    }
    [contact] = world.rows(c)
    assert contact["traits"] == {"tier": "new"}
    assert world.count(e) == 1


def test_anonymous_calls_are_accepted_and_skipped(intake: Intake) -> None:
    calls = [
        {"type": "track", "anonymousId": "anon-1", "event": "viewed_pricing"},
        {"type": "page", "anonymousId": "anon-1", "name": "Pricing"},
        {"type": "identify", "anonymousId": "anon-1", "traits": {"email": "x@example.com"}},
        {"type": "alias", "userId": "u-1", "previousId": "anon-1"},
        {"type": "page", "userId": "u-9", "name": "Home", "properties": {"path": "/"}},
    ]
    answer = intake.post("/v1/batch", {"batch": calls})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["skipped"], answer.json()["events"]) == (4, 1)
    [page] = intake.world.rows(e)
    assert (page["contact_id"], page["name"], page["properties"]) == (
        "u-9",
        "page_viewed",
        {"path": "/", "name": "Home"},
    )
    assert intake.world.count(c) == 0


def test_the_write_key_is_the_basic_username_or_the_bodys_writekey(intake: Intake) -> None:
    call = {"userId": "u-1", "event": "x", "timestamp": "2026-03-02T08:00:00Z"}
    for key in (None, "wk-wrong"):
        answer = intake.post("/v1/track", call, key=key)
        assert answer.status_code == 401 and "write key" in answer.json()["detail"]
    assert intake.post("/v1/track", {**call, "writeKey": "wk-wrong"}, key=None).status_code == 401
    assert intake.post("/v1/track", {**call, "writeKey": WRITE_KEY}, key=None).status_code == 200
    assert intake.world.count(e) == 1


def test_bad_json_and_wrong_types_are_refused_naming_the_field_and_nothing_is_written(intake: Intake) -> None:
    before = intake.state()
    identify = {"type": "identify", "userId": "u-1", "traits": {"email": "fine@example.com"}}

    answer = intake.post(
        "/v1/batch", None, content=b'{"batch": [', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["detail"]

    cases = [
        ({"batch": [identify, {"type": "track", "userId": "u-1", "event": 5}]}, "batch[1].event"),
        ({"batch": [identify, {"type": "track", "userId": "u-1"}]}, "batch[1].event"),
        (
            {"batch": [identify, {"type": "group", "userId": "u-1", "groupId": "g", "traits": "big"}]},
            "batch[1].traits",
        ),
        (
            {
                "batch": [
                    identify,
                    {"type": "identify", "userId": "u-2", "traits": {"email": "not-an-address"}},
                ]
            },
            "batch[1].traits.email",
        ),
        (
            {
                "batch": [
                    identify,
                    {"type": "group", "userId": "u-1", "groupId": "g", "traits": {"mrr": "lots"}},
                ]
            },
            "batch[1].traits.mrr",
        ),
        (
            {"batch": [identify, {"type": "track", "userId": "u-1", "event": "x", "timestamp": "someday"}]},
            "batch[1].timestamp",
        ),
        ({"batch": [identify, {"type": "teleport", "userId": "u-1"}]}, "batch[1]"),
        ({"batch": "all of them"}, "batch"),
    ]
    for payload, field in cases:
        answer = intake.post("/v1/batch", payload)
        assert answer.status_code == 422, (field, answer.text)
        assert field in [p["field"] for p in answer.json()["detail"]], (field, answer.json())
    answer = intake.post("/v1/identify", [identify])
    assert answer.status_code == 422 and answer.json()["detail"][0]["msg"] == "the body must be a JSON object"
    assert intake.state() == before


def test_segments_size_limits_are_enforced_before_parsing_with_413(intake: Intake) -> None:
    before = intake.state()
    small = {"type": "track", "userId": "u-1", "event": "x", "properties": {"pad": "y" * 900}}
    batch = {"batch": [small] * 600}  # about 560 KB: over Segment's 500 KB a batch
    answer = intake.post("/v1/batch", batch)
    assert answer.status_code == 413 and "512,000 bytes" in answer.json()["detail"]

    streamed = intake.post("/v1/batch", None, content=iter([json.dumps(batch).encode()]))
    assert streamed.status_code == 413  # no Content-Length: the cap holds while reading

    huge = {"type": "track", "userId": "u-1", "event": "x", "properties": {"pad": "y" * 40_000}}
    answer = intake.post("/v1/batch", {"batch": [small, huge]})
    assert answer.status_code == 413 and answer.json()["detail"].startswith("batch[1] is larger than")
    answer = intake.post("/v1/track", huge)
    assert answer.status_code == 413 and "32,768 bytes" in answer.json()["detail"]
    assert intake.state() == before


def test_a_gzipped_batch_is_read_like_a_plain_one(intake: Intake) -> None:
    call = {"type": "track", "userId": "u-1", "event": "x", "timestamp": "2026-03-02T08:00:00Z"}
    body = gzip.compress(json.dumps({"batch": [call]}).encode())
    answer = intake.post(
        "/v1/batch",
        None,
        content=body,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert intake.world.count(e) == 1
    bomb = gzip.compress(b'{"batch": [' + b" " * 2_000_000 + b"]}")
    answer = intake.post("/v1/batch", None, content=bomb, headers={"content-encoding": "gzip"})
    assert answer.status_code == 413 and "after gzip decoding" in answer.json()["detail"]


def test_the_api_documents_the_intake_and_webhook_routes(intake: Intake) -> None:
    spec = intake.http.get(f"{intake.url}/openapi.json").json()
    for path in ("/v1/identify", "/v1/track", "/v1/group", "/v1/page", "/v1/batch", "/webhooks/sendgrid"):
        assert "requestBody" in spec["paths"][path]["post"], path
    assert intake.http.get(f"{intake.url}/docs").status_code == 200
    assert intake.http.get(f"{intake.url}/healthz").json() == {"status": "ok"}
