"""Fuzzing the doors with hostile values (issue 20): Segment calls, SendGrid batches and import files full
of NaN, Infinity, lone surrogates, NUL and control characters, `/` in ids, extreme dates, deep nesting
and huge fields. Every answer is 2xx, 400, 401, 403, 413 or 422 (a 422 names its field), an import either
lands or names line and field, and a tick afterwards runs every journey."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from engine_world import NOW, World
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_webhook_sendgrid import KEY, public_text
from test_webhook_sendgrid import signed as signed_at

from engagement import errors, values
from engagement.api.app import create_app
from engagement.api.auth import contact_token
from engagement.clock import ManualClock
from engagement.delivery import survey_links
from engagement.ingest import importer
from engagement.store import schema
from engagement.testing.served import served


def signed(body: bytes) -> dict[str, str]:
    """Headers SendGrid would send with `body`, signed at the doors' clock (NOW)."""
    return signed_at(body, timestamp=str(int(NOW.timestamp())))


BACKENDS = ("sqlite", "postgresql")
WRITE_KEY = "wk-fuzz"
VIEW_KEY = "sk-fuzz-views"  # the CS views read with a server key
ANSWERS = {200, 400, 401, 403, 413, 422}
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
JOURNEYS = {
    "scored": """
        id: scored
        name: Scored contacts
        status: active
        trigger: {condition: {contact.traits.score: {gte: 1}}}
        steps:
          - id: hello
            email: {template: onboarding/welcome, subject: "Hello {{ contact.first_name }}"}
        """,
    "seated": """
        id: seated
        name: Accounts with seats
        status: active
        audience: account
        trigger: {condition: {account.traits.seats: {gt: 2}}}
        steps:
          - id: note
            email: {template: onboarding/welcome, subject: "Seats"}
        """,
    "signed-up": """
        id: signed-up
        name: Signed up
        status: active
        trigger: {event: signed_up}
        filter: {contact.traits.plan: {ne: free}}
        steps:
          - id: welcome
            email: {template: onboarding/welcome, subject: "Welcome {{ contact.first_name }}"}
        """,
}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        1e20,
        -1e20,
        10**30,
        "\ud800",
        "x\udfffy",
        "a\x00b",
        "\x07bell",
        "a/b",
        "..",
        "",
        "x" * 40_000,
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-05:00",
        "=cmd|' /C calc'!A0",
    ]
)
PLAIN = st.one_of(st.integers(-5, 5), st.text(max_size=8), st.booleans(), st.none())
VALUE = st.one_of(HOSTILE, PLAIN, st.integers(30, 60).map(nested))
JSON_VALUE = st.recursive(
    VALUE,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=4) | HOSTILE.filter(lambda v: isinstance(v, str)), inner, max_size=3
        )
    ),
    max_leaves=8,
)
OBJECT = st.dictionaries(
    st.sampled_from(["score", "seats", "plan", "email", "\ud800", "createdAt"]), JSON_VALUE, max_size=4
)
ID = st.one_of(HOSTILE, st.sampled_from(["u-1", "u-2", "acme"]))
CALL = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["identify", "track", "group", "page"]),
        "userId": ID,
        "groupId": ID,
        "event": st.one_of(st.just("signed_up"), HOSTILE),
        "timestamp": st.one_of(HOSTILE, st.just("2026-03-02T09:00:00Z")),
        "messageId": ID,
        "traits": OBJECT,
        "properties": OBJECT,
    }
)


class Doors:
    """A world served over HTTP, with good contacts already in it."""

    def __init__(self, world: World, url: str, http: httpx.Client) -> None:
        self.world, self.url, self.http = world, url, http

    def post(self, path: str, doc: Any) -> httpx.Response:
        auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        body = json.dumps(doc).encode()  # NaN and Infinity as JSON's lookalikes, surrogates as \u escapes
        return self.http.post(f"{self.url}{path}", content=body, headers={"Authorization": f"Basic {auth}"})


@pytest.fixture
def doors(world: World) -> Iterator[Doors]:
    world.configure(
        f'[api]\nwrite_keys = ["{WRITE_KEY}"]\nserver_keys = ["{VIEW_KEY}"]\n'
        f'[webhooks.sendgrid]\npublic_key = "{public_text(KEY)}"\n'
    )
    for text in JOURNEYS.values():
        world.journey(text)
    world.accounts({"id": "acme", "traits": {"seats": 3}})
    world.contacts({"id": "u-1", "account_id": "acme", "email": "u1@example.com", "traits": {"score": 2}})
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW))
    with served(app) as url, httpx.Client(timeout=20) as http:
        yield Doors(world, url, http)


def allowed(answer: httpx.Response) -> bool:
    if answer.status_code not in ANSWERS:
        return False
    if answer.status_code == 422:
        return all(p["field"] for p in answer.json()["detail"])
    return True


def rows_as_csv(rows: list[dict[str, Any]]) -> bytes:
    columns = sorted({k for row in rows for k in row})
    out = io.StringIO()
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()})
    return out.getvalue().encode(
        "utf-8", "surrogatepass"
    )  # a lone surrogate becomes bytes that are not UTF-8


def test_hostile_values_at_every_door_get_a_clear_answer_and_every_journey_still_ticks(
    doors: Doors, tmp_path: Path
) -> None:
    world = doors.world

    @FUZZ
    @given(st.lists(CALL, min_size=1, max_size=3), st.sampled_from(["single", "batch"]))
    def intake(calls: list[dict[str, Any]], how: str) -> None:
        if how == "batch":
            answer = doors.post("/v1/batch", {"batch": calls})
        else:
            answer = doors.post(f"/v1/{calls[0]['type']}", calls[0])
        assert allowed(answer), answer.text

    @FUZZ
    @given(
        st.lists(
            st.fixed_dictionaries(
                {
                    "event": st.sampled_from(["bounce", "open"]),
                    "timestamp": st.one_of(HOSTILE, st.just(1772445600)),
                    "email": st.one_of(HOSTILE, st.just("x@example.com")),
                    "sg_event_id": ID,
                    "url": JSON_VALUE,
                }
            ),
            min_size=1,
            max_size=4,
        )
    )
    def webhook(events: list[dict[str, Any]]) -> None:
        body = json.dumps(events).encode()
        answer = doors.http.post(f"{doors.url}/webhooks/sendgrid", content=body, headers=signed(body))
        assert allowed(answer), answer.text

    contact_row = st.fixed_dictionaries(
        {"id": ID, "account_id": st.just("acme"), "email": st.one_of(HOSTILE, st.just("a@example.com"))},
        optional={"traits": OBJECT, "created_at": HOSTILE, "first_name": HOSTILE},
    )
    event_row = st.fixed_dictionaries(
        {
            "contact_id": st.one_of(st.just("u-1"), ID),
            "name": st.one_of(st.just("signed_up"), HOSTILE),
            "timestamp": st.one_of(HOSTILE, st.just("2026-03-02T09:00:00Z")),
        },
        optional={"id": ID, "properties": OBJECT},
    )

    @FUZZ
    @given(st.sampled_from(["contacts", "events"]), st.data(), st.sampled_from(["csv", "jsonl"]))
    def imports(kind: str, data: st.DataObject, suffix: str) -> None:
        rows = data.draw(st.lists(contact_row if kind == "contacts" else event_row, min_size=1, max_size=4))
        path = tmp_path / f"fuzz.{suffix}"
        if suffix == "csv":
            path.write_bytes(rows_as_csv(rows))
        else:
            path.write_bytes(b"".join(json.dumps(r).encode("utf-8", "surrogatepass") + b"\n" for r in rows))
        try:
            importer.import_file(world.db, world.settings, kind, path, NOW)
        except errors.ImportFileError as exc:
            assert all(p.line for p in exc.problems if not p.message.startswith("…")), exc

    intake()
    webhook()
    imports()

    report = world.tick(NOW + timedelta(hours=1))

    assert set(JOURNEYS) <= set(report.journeys)
    assert report.journeys["scored"].enrolled >= 1  # the good contact still enters


SURVEY_ID = "00000000-0000-4000-8000-00000000feed"
NUDGE_SURVEY_ID = "00000000-0000-4000-8000-00000000beef"
FORM_VALUE = st.one_of(
    HOSTILE.filter(lambda v: isinstance(v, str)), st.sampled_from(["0", "7", "10", "11", "-1", " 5 "])
)
ANSWER_VALUE = st.one_of(JSON_VALUE, st.integers(-3, 12))


def sent_surveys(world: World) -> None:
    """An email survey and an in-app survey already sent to u-1 (rows as dispatch leaves them)."""
    common = {
        "enrollment_id": 10**9, "journey_id": "scored", "step_id": "survey-door", "recipient": "u-1", "contact_id": "u-1",
        "status": "sent", "due_at": NOW, "created_at": NOW, "sent_at": NOW, "survey_kind": "nps",
    }  # fmt: skip
    with world.db.begin() as conn:
        conn.execute(
            schema.deliveries.insert(),
            [
                {**common, "id": SURVEY_ID, "channel": "email"},
                {**common, "id": NUDGE_SURVEY_ID, "channel": "in_app", "enrollment_id": 10**9 + 1},
            ],
        )
        conn.execute(
            schema.nudges.insert(),
            [{"id": NUDGE_SURVEY_ID, "delivery_id": NUDGE_SURVEY_ID, "contact_id": "u-1", "journey_id": "scored",
              "step_id": "survey-door", "title": "How likely?", "created_at": NOW, "survey_kind": "nps"}],
        )  # fmt: skip


def test_hostile_values_at_the_survey_doors_get_a_clear_answer_and_only_valid_answers_are_stored(
    doors: Doors,
) -> None:
    world = doors.world
    sent_surveys(world)
    token = survey_links.make_token(SURVEY_ID, world.settings.unsubscribe.secret, NOW + timedelta(days=1))
    bearer = {"Authorization": f"Bearer {contact_token('u-1', world.settings.inapp.token_secret)}"}

    @FUZZ
    @given(
        st.dictionaries(st.sampled_from(["score", "comment", "\ud800", "x"]), FORM_VALUE, max_size=3),
        st.booleans(),
    )
    def landing(form: dict[str, str], raw_bytes: bool) -> None:
        body = "&".join(
            f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}" for k, v in form.items()
        )
        content = body.encode("utf-8", "surrogatepass") + (b"&comment=%FF%00" if raw_bytes else b"")
        answer = doors.http.post(
            f"{doors.url}/s/{token}",
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code in ANSWERS, answer.text
        if answer.status_code == 422:
            assert "score:" in answer.text or "comment:" in answer.text, answer.text
        score = form.get("score", "")
        path = quote(score, safe="", errors="surrogatepass") or "x"
        page = doors.http.get(f"{doors.url}/s/{token}/{path}")
        assert page.status_code in ANSWERS | {404}, page.text

    @FUZZ
    @given(
        st.fixed_dictionaries(
            {}, optional={"score": ANSWER_VALUE, "comment": ANSWER_VALUE, "extra": ANSWER_VALUE}
        )
    )
    def inapp(doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        answer = doors.http.post(
            f"{doors.url}/v1/nudges/{NUDGE_SURVEY_ID}/answer",
            content=body,
            headers={**bearer, "Content-Type": "application/json"},
        )
        assert allowed(answer), answer.text

    landing()
    inapp()
    for row in world.rows(schema.survey_answers):
        assert 0 <= row["score"] <= 10
        assert row["comment"] is None or values.text_problem(row["comment"]) is None
    report = world.tick(NOW + timedelta(hours=1))
    assert set(JOURNEYS) <= set(report.journeys)


def _row_counts(world: World) -> dict[str, int]:
    return {t.name: world.count(t) for t in schema.metadata.sorted_tables}


def test_hostile_values_at_the_cs_view_doors_get_a_clear_answer_escaped_and_write_nothing(
    doors: Doors,
) -> None:
    world = doors.world
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW))
    before = _row_counts(world)
    bearer = {"Authorization": f"Bearer {VIEW_KEY}"}
    with served(app) as url, httpx.Client(timeout=20) as http:

        @FUZZ
        @given(
            st.sampled_from(
                [
                    "/search?q=",
                    "/contacts/",
                    "/accounts/",
                    "/journeys/",
                    "/journeys/scored?step=",
                    "/journeys/scored?page=",
                ]
            ),
            HOSTILE.filter(lambda v: isinstance(v, str))
            | st.sampled_from(["<script>x</script>", "u-1", "acme"]),
        )
        def views(door: str, value: str) -> None:
            path = door + quote(value, safe="", errors="surrogatepass")
            answer = http.get(f"{url}{path}", headers=bearer)
            # an id that is empty, `.`, `..` or holds a `/` leaves the route unmatched: the router's answer
            unmatched = door.endswith("/") and (value in ("", ".", "..") or "/" in value)
            if unmatched:
                assert answer.status_code in (307, 404), (path, answer.text)
                return
            assert allowed(answer) or answer.status_code == 404, (path, answer.text)
            if answer.status_code == 404:
                assert any(f in answer.text for f in ("contact_id", "account_id", "journey_id", "step")), (
                    answer.text
                )
            assert "<script>" not in answer.text, path

        sent: list[str] = []

        @FUZZ
        @given(
            st.sampled_from(["scored:hello", "scored:nowhere", "nothing:hello"]) | FORM_VALUE,
            st.sampled_from(["qa@example.com", "<script>@x.y"]) | FORM_VALUE,
        )
        def test_send(step: str, to: str) -> None:
            form = f"step={quote(step, errors='surrogatepass')}&to={quote(to, errors='surrogatepass')}"
            answer = http.post(
                f"{url}/contacts/u-1/test-send",
                content=form.encode("utf-8", "surrogatepass"),
                headers={**bearer, "Content-Type": "application/x-www-form-urlencoded"},
            )
            assert allowed(answer) or answer.status_code == 303, answer.text
            if "<script>" in answer.text:  # echoed in a JSON problem, never in a page
                assert answer.headers["content-type"].startswith("application/json"), answer.text
            if answer.status_code == 303:
                sent.append(to)

        views()
        test_send()
    after = _row_counts(world)
    assert after.pop("test_send") == before.pop("test_send") + len(sent)
    assert after == before
    assert all(row["to_address"] == "qa@example.com" for row in world.rows(schema.test_sends))
