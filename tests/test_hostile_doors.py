"""Hostile values at every door (issue 20): NaN, Infinity, NUL, lone surrogates, deep nesting, extreme
dates, `/` in ids, non-UTF-8 bytes. Each is refused with its field named (HTTP 400/401/422, imports by
file, line and field), nothing is written, the store never holds invalid JSON, a tick afterwards works,
and the CSV the package writes never carries a formula."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_world import NOW, World
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert
from test_webhook_sendgrid import KEY, public_text
from test_webhook_sendgrid import signed as signed_at

from engagement import errors
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.delivery import unsubscribe
from engagement.ingest import importer
from engagement.ingest import upserts as ingest
from engagement.ingest.records import ContactIn
from engagement.reports import sheets, spreadsheet
from engagement.reports.model import Report, TurnedRed
from engagement.reports.period import Period
from engagement.store import schema
from engagement.testing.served import served


def signed(body: bytes) -> dict[str, str]:
    """Headers SendGrid would send with `body`, signed at the doors' clock (NOW)."""
    return signed_at(body, timestamp=str(int(NOW.timestamp())))


BACKENDS = ("sqlite", "postgresql")
a, c, e = schema.accounts, schema.contacts, schema.events
WRITE_KEY = "wk-hostile"
SERVER_KEY = "sk-hostile"
TRAIT_JOURNEY = """
id: pro-admins
name: Pro admins
status: active
trigger: {condition: {contact.traits.score: {gte: 1}}}
steps:
  - id: hello
    email: {template: onboarding/welcome, subject: "Hello {{ contact.first_name }}"}
"""


@dataclass
class Door:
    """A world served over HTTP with intake, webhook and server keys configured."""

    world: World
    url: str
    http: httpx.Client

    def raw(self, path: str, content: bytes, **headers: str) -> httpx.Response:
        auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        sent = {"Authorization": f"Basic {auth}", "Content-Type": "application/json", **headers}
        return self.http.post(f"{self.url}{path}", content=content, headers=sent)

    def state(self) -> list[int]:
        return [self.world.count(t) for t in (a, c, e, schema.responses, schema.intake_messages)]


@pytest.fixture
def door(world: World) -> Iterator[Door]:
    world.configure(
        f'[api]\nwrite_keys = ["{WRITE_KEY}"]\nserver_keys = ["{SERVER_KEY}"]\n'
        f'[webhooks.sendgrid]\npublic_key = "{public_text(KEY)}"\n'
        '[reports]\nsession_secret = "s3cret"\n'
    )
    app = create_app(world.settings, database=world.db, clock=ManualClock(NOW))
    with served(app) as url, httpx.Client(timeout=10) as http:
        yield Door(world, url, http)


def fields(answer: httpx.Response) -> list[str]:
    return [p["field"] for p in answer.json()["detail"]]


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE_CALLS = {
    "NaN in a trait": (b'{"userId": "u-1", "traits": {"score": NaN}}', "/v1/identify", "traits.score"),
    "Infinity in a property": (
        b'{"batch": [{"type": "track", "userId": "u-1", "event": "x", "properties": {"p": [1, -Infinity]}}]}',
        "/v1/batch",
        "batch[0].properties.p[1]",
    ),
    "a number too big for a float": (
        b'{"userId": "u-1", "groupId": "g", "traits": {"seats": 1e400}}',
        "/v1/group",
        "traits.seats",
    ),
    "a lone surrogate in an id": (b'{"userId": "u-\\ud800", "event": "x"}', "/v1/track", "userId"),
    "a lone surrogate in a trait key": (
        b'{"userId": "u-1", "traits": {"\\udc00": 1}}',
        "/v1/identify",
        "traits",
    ),
    "a NUL in an email": (
        b'{"userId": "u-1", "traits": {"email": "a\\u0000@b.example"}}',
        "/v1/identify",
        "traits.email",
    ),
    "a slash in an id": (b'{"userId": "team/ada", "event": "x"}', "/v1/track", "userId"),
    "a control character in a group id": (
        b'{"userId": "u-1", "groupId": "g\\u0007"}',
        "/v1/group",
        "groupId",
    ),
    "a slash in a company id": (
        b'{"userId": "u-1", "traits": {"company": {"id": "a/b"}}}',
        "/v1/identify",
        "traits.company.id",
    ),
    "a slash in a messageId": (
        b'{"userId": "u-1", "event": "x", "messageId": "m/1"}',
        "/v1/track",
        "messageId",
    ),
    "year 1 with an offset": (
        b'{"userId": "u-1", "event": "x", "timestamp": "0001-01-01T00:00:00+01:00"}',
        "/v1/track",
        "timestamp",
    ),
    "year 9999 with an offset": (
        b'{"batch": [{"type": "track", "userId": "u-1", "event": "x", "timestamp": "9999-12-31T23:00:00-05:00"}]}',
        "/v1/batch",
        "batch[0].timestamp",
    ),
    "a created_at trait in year 9999": (
        b'{"userId": "u-1", "traits": {"createdAt": "9999-12-31T23:59:59+00:00"}}',
        "/v1/identify",
        "traits.createdAt",
    ),
    "nesting 40 levels deep": (
        b'{"userId": "u-1", "traits": ' + nested(40).encode() + b"}",
        "/v1/identify",
        "traits.a.a.a",
    ),
}


@pytest.mark.parametrize("case", HOSTILE_CALLS.values(), ids=HOSTILE_CALLS.keys())
def test_a_hostile_value_in_a_segment_call_is_refused_with_422_naming_its_field_and_writes_nothing(
    door: Door, case: tuple[bytes, str, str]
) -> None:
    content, path, field = case
    before = door.state()

    answer = door.raw(path, content)

    assert answer.status_code == 422, answer.text
    assert any(f.startswith(field) for f in fields(answer)), answer.json()
    assert door.state() == before


def test_nesting_too_deep_for_the_parser_is_a_400_before_the_write_key_is_read(door: Door) -> None:
    deep = b'{"writeKey": "x", "traits": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answer = door.http.post(f"{door.url}/v1/identify", content=deep[:30_000] + b"}")
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["detail"]
    batch = door.http.post(f"{door.url}/v1/batch", content=b"[" * 5000 + b"]" * 5000)
    assert batch.status_code == 400 and "nested deeper" in batch.json()["detail"]


def test_a_write_key_with_a_lone_surrogate_is_a_401(door: Door) -> None:
    body = b'{"writeKey": "\\ud800", "userId": "u-1", "event": "x"}'
    answer = door.http.post(f"{door.url}/v1/track", content=body)
    assert answer.status_code == 401


def test_after_refused_hostile_traits_a_tick_with_a_traits_condition_works(door: Door) -> None:
    door.world.journey(TRAIT_JOURNEY)
    good = b'{"userId": "u-1", "traits": {"email": "u1@example.com", "score": 3}}'
    assert door.raw("/v1/identify", good).status_code == 200
    for hostile in (b"NaN", b"Infinity", b"-Infinity", b'"\\ud800"'):
        body = b'{"userId": "u-2", "traits": {"email": "u2@example.com", "score": ' + hostile + b"}}"
        assert door.raw("/v1/identify", body).status_code == 422

    report = door.world.tick(NOW + timedelta(hours=1))

    assert report.journeys["pro-admins"].enrolled == 1


def test_the_stores_json_serialiser_refuses_nan_infinity_and_lone_surrogates(world: World) -> None:
    world.accounts({"id": "acme"})
    for traits in ({"score": float("nan")}, {"score": float("inf")}, {"note": "\ud800"}, {"\udfff": 1}):
        row = ContactIn.model_construct(id="u-1", account_id="acme", traits=traits)
        row.__pydantic_fields_set__ = {"id", "account_id", "traits"}
        refused = (sa_exc.StatementError, ValueError)  # PostgreSQL's driver raises from its own adapter
        with pytest.raises(refused, match=r"JSON|surrogate"), world.db.begin() as conn:
            ingest.upsert_contacts(world.db, conn, [row], NOW)
    assert world.count(c) == 0


def _webhook_event(**fields: Any) -> dict[str, Any]:
    return {
        "email": "someone@example.org",
        "event": "bounce",
        "type": "bounce",
        "timestamp": int(NOW.timestamp()),
        "sg_event_id": "ev-good",
        "sg_message_id": "NotOurs.filterdrecv-1",
        **fields,
    }


def test_a_sendgrid_batch_applies_its_valid_events_and_skips_and_counts_the_out_of_range_ones(
    door: Door,
) -> None:
    good = json.dumps(_webhook_event())
    out_of_range = [
        json.dumps(_webhook_event(sg_event_id="ev-1e20", timestamp=1e20)),
        json.dumps(_webhook_event(sg_event_id="ev-year-1", timestamp=-62135596800)),
        '{"event": "open", "timestamp": NaN, "sg_event_id": "ev-nan"}',
        json.dumps(_webhook_event(sg_event_id="ev-surrogate", email="x\ud800@example.org")),
        json.dumps(_webhook_event(sg_event_id="ev-long", email="x" * 400 + "@example.org")),
    ]
    body = ("[" + ", ".join([out_of_range[0], good, *out_of_range[1:]]) + "]").encode()

    answer = door.http.post(f"{door.url}/webhooks/sendgrid", content=body, headers=signed(body))

    assert answer.status_code == 200, answer.text
    counts = answer.json()
    assert (counts["received"], counts["invalid"], counts["unknown"]) == (6, 5, 1)
    [suppressed] = door.world.rows(schema.suppressions)
    assert suppressed["email"] == "someone@example.org"

    nul = json.dumps(
        [_webhook_event(sg_event_id="ev-nul", email="a\x00@example.org"), _webhook_event()]
    ).encode()
    answer = door.http.post(f"{door.url}/webhooks/sendgrid", content=nul, headers=signed(nul))
    assert answer.status_code == 200 and answer.json()["invalid"] == 1, answer.text


def test_a_sendgrid_body_nested_too_deeply_is_a_400_not_a_500(door: Door) -> None:
    body = b"[" * 5000 + b"]" * 5000
    answer = door.http.post(f"{door.url}/webhooks/sendgrid", content=body, headers=signed(body))
    assert answer.status_code == 400


def test_ids_with_a_slash_are_refused_at_the_door_and_one_stored_before_can_still_be_erased(
    door: Door,
) -> None:
    world = door.world
    assert door.raw("/v1/identify", b'{"userId": "a/b", "traits": {}}').status_code == 422
    world.accounts({"id": "acme"})
    with world.db.begin() as conn:  # written before the rule, by hand
        conn.execute(insert(c).values(id="legacy/1", account_id="acme", email="l@example.com", traits={}))
    bearer = {"Authorization": f"Bearer {SERVER_KEY}"}

    erased = door.http.delete(f"{door.url}/v1/contacts/legacy%2F1", headers=bearer)

    assert erased.status_code == 200, erased.text
    [row] = world.rows(c)
    assert row["erased_at"] is not None and row["email"] is None


@pytest.mark.parametrize("contact", ["%00", "%C2%85", "%07bell", "%2E%2E", "x" * 201])
def test_a_contact_id_no_door_accepts_is_a_422_on_the_inbox_and_erasure_routes(
    door: Door, contact: str
) -> None:
    bearer = {"Authorization": f"Bearer {SERVER_KEY}"}
    inbox = door.http.get(f"{door.url}/v1/contacts/{contact}/nudges", headers=bearer)
    assert inbox.status_code in (404, 422), inbox.text
    if inbox.status_code == 422:
        assert fields(inbox) == ["path.contact_id"]
    erase = door.http.delete(f"{door.url}/v1/contacts/{contact}", headers=bearer)
    assert erase.status_code in (404, 422), erase.text


def test_a_hostile_nudge_event_body_is_refused_before_it_is_read_further(door: Door) -> None:
    bearer = {"Authorization": f"Bearer {SERVER_KEY}", "Content-Type": "application/json"}
    post = f"{door.url}/v1/nudges/n-1/events"
    deep = door.http.post(post, content=b"[" * 5000 + b"]" * 5000, headers=bearer)
    assert deep.status_code == 400
    nan = door.http.post(post, content=b'{"kind": NaN}', headers=bearer)
    assert nan.status_code == 422 and fields(nan) == ["kind"]
    huge = door.http.post(post, content=b'{"kind": "' + b"x" * 40_000 + b'"}', headers=bearer)
    assert huge.status_code == 413
    unknown = door.http.post(post, content=b'{"kind": "seen"}', headers=bearer)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "query",
    ["since=99999999999999999999999d", "from=0001-01-01&to=9999-12-31"],
)
def test_a_report_range_past_what_a_date_holds_is_a_400(door: Door, query: str) -> None:
    answer = door.http.get(
        f"{door.url}/v1/reports?{query}", headers={"Authorization": f"Bearer {SERVER_KEY}"}
    )
    assert answer.status_code == 400, answer.text


def test_an_unsubscribe_link_naming_an_email_id_no_door_accepts_still_unsubscribes(door: Door) -> None:
    world = door.world
    world.accounts({"id": "acme"})
    world.contacts({"id": "u-1", "account_id": "acme", "email": "u1@example.com"})
    link = unsubscribe.url(door.url, "u-1", world.settings.unsubscribe.secret)

    answer = door.http.post(f"{link}?d=%00")

    assert answer.status_code == 200, answer.text
    [row] = world.rows(c)
    assert row["unsubscribed_at"] is not None


def test_a_non_ascii_session_cookie_is_no_login_not_a_500(door: Door) -> None:
    cookie = "engagement_session=é.abc".encode()
    answer = door.http.get(f"{door.url}/v1/reports", headers=[(b"Cookie", cookie)])
    assert answer.status_code == 401
    page = door.http.get(f"{door.url}/reports", headers=[(b"Cookie", cookie)], follow_redirects=False)
    assert page.status_code == 303


# --- imports --------------------------------------------------------------------------------------


def write_bytes(world: World, name: str, content: bytes) -> Path:
    path = world.root / name
    path.write_bytes(content)
    return path


def located(world: World, kind: str, path: Path) -> list[str]:
    before = [world.count(t) for t in (a, c, e)]
    with pytest.raises(errors.ImportFileError) as caught:
        importer.import_file(world.db, world.settings, kind, path, NOW)
    assert [world.count(t) for t in (a, c, e)] == before
    return [str(p) for p in caught.value.problems]


BAD_IMPORTS = {
    "a byte that is not UTF-8 in a CSV": (
        "accounts",
        "a.csv",
        b"id,name\nacme,Acme\nglobex,Glo\xffbex\n",
        ":3: name: not UTF-8 text: byte 0xFF",
    ),
    "a byte that is not UTF-8 in JSONL": (
        "accounts",
        "a.jsonl",
        b'{"id": "acme"}\n{"id": "globex", "name": "Glo\xfe"}\n',
        ":2: name: not UTF-8 text: byte 0xFE",
    ),
    "a cell over the CSV limit": (
        "accounts",
        "big.csv",
        b"id,name\nacme,Acme\nglobex," + b"x" * 200_000 + b"\n",
        ":3: a cell is longer than the CSV limit",
    ),
    "JSON nested too deeply for the parser": (
        "accounts",
        "deep.jsonl",
        b'{"id": "acme"}\n{"id": "globex", "traits": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
        ":2: invalid JSON: JSON nested deeper",
    ),
    "traits nested 40 levels deep in a CSV cell": (
        "accounts",
        "deep.csv",
        b'id,traits\nacme,"' + nested(40).replace('"', '""').encode() + b'"\n',
        ":2: traits: ",
    ),
    "NaN in JSONL traits": (
        "accounts",
        "nan.jsonl",
        b'{"id": "acme", "traits": {"score": NaN}}\n',
        ":1: traits.score: NaN and Infinity are not allowed",
    ),
    "Infinity in CSV traits": (
        "accounts",
        "inf.csv",
        b'id,traits\nacme,"{""score"": Infinity}"\n',
        ":2: traits: score: NaN and Infinity are not allowed",
    ),
    "a short CSV row": (
        "accounts",
        "short.csv",
        b"id,name,plan\nacme,Acme,pro\nglobex,Globex\n",
        ":3: plan: fewer cells",
    ),
    "a NUL in an email": (
        "contacts",
        "nul.csv",
        b"id,account_id,email\ncy,acme,cy\x00@acme.example\n",
        ":2: email: text must not contain a NUL character",
    ),
    "a slash in a contact id": (
        "contacts",
        "slash.jsonl",
        b'{"id": "team/cy", "account_id": "acme"}\n',
        ":1: id: an id must not contain '/'",
    ),
    "an event in year 1 with an offset": (
        "events",
        "old.jsonl",
        b'{"contact_id": "ada", "name": "x", "timestamp": "0001-01-01T00:00:00+01:00"}\n',
        ":1: timestamp: ",
    ),
}


@pytest.mark.parametrize("case", BAD_IMPORTS.values(), ids=BAD_IMPORTS.keys())
def test_a_hostile_import_row_is_named_by_line_and_field_and_nothing_is_written(
    world: World, case: tuple[str, str, bytes, str]
) -> None:
    world.accounts({"id": "acme"})
    world.contacts({"id": "ada", "account_id": "acme"})
    kind, name, content, expected = case
    path = write_bytes(world, name, content)

    problems = located(world, kind, path)

    assert len(problems) == 1 and problems[0].startswith(f"{path}{expected}"), problems


def test_an_id_repeated_in_one_file_is_counted_once_and_each_repeat_is_noted_by_line(world: World) -> None:
    path = write_bytes(
        world, "repeats.csv", b"id,name\nacme,Acme\nglobex,Globex\nacme,Acme Corp\nacme,ACME\n"
    )

    result = importer.import_file(world.db, world.settings, "accounts", path, NOW)

    assert result.imported == 2
    assert [str(p) for p in result.repeats] == [
        f"{path}:4: id: 'acme' repeats line 2; its rows apply in order",
        f"{path}:5: id: 'acme' repeats line 2; its rows apply in order",
    ]
    assert {r["id"]: r["name"] for r in world.rows(a)} == {"acme": "ACME", "globex": "Globex"}
    world.contacts({"id": "ada", "account_id": "acme"})
    events = write_bytes(
        world,
        "events.jsonl",
        b'{"id": "e1", "contact_id": "ada", "name": "x", "timestamp": "2026-03-01T00:00:00Z"}\n' * 3,
    )
    first = importer.import_file(world.db, world.settings, "events", events, NOW)
    again = importer.import_file(world.db, world.settings, "events", events, NOW)
    assert (first.imported, first.duplicates, len(first.repeats)) == (1, 0, 2)
    assert (again.imported, again.duplicates, len(again.repeats)) == (0, 1, 2)


def test_the_cli_names_hostile_suppression_lines_and_suppresses_nothing(world: World) -> None:
    path = write_bytes(world, "sup.txt", b"ok@example.com\nbad\xff@example.com\nnul\x00@example.com\n")

    result = world.cli("suppressions", "import", str(path))

    assert isinstance(result.exception, errors.ProblemsError)
    assert [str(p) for p in result.exception.problems] == [
        f"{path}:2: email: not UTF-8 text: byte 0xFF (or a lone surrogate \\udcff)",
        f"{path}:3: email: text must not contain a NUL character",
    ]
    assert world.count(schema.suppressions) == 0


# --- CSV out --------------------------------------------------------------------------------------

FORMULA = "=cmd|' -C calc'!A0"  # the issue's example has a `/`, which no id may hold now


def test_report_csv_neutralises_formula_cells_and_keeps_negative_numbers_numbers() -> None:
    day = date(2026, 3, 2)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    report = Report(
        Period(start, start + timedelta(days=2)),
        start,
        [],
        turned_red=[
            TurnedRed("contact", FORMULA, -3.5, "yellow", day),
            TurnedRed("contact", "@SUM(A1)", 1.0, "+green", day),
            TurnedRed("contact", "\tx", 1.0, "-1", day),
            TurnedRed("contact", "plain-id", 1.0, "green", day),
        ],
    )

    rows = list(csv.DictReader(io.StringIO(sheets.to_csv(report))))

    ids = [r["subject_id"] for r in rows if r["metric"] == "value"]
    assert ids == ["'" + FORMULA, "'@SUM(A1)", "'\tx", "plain-id"]
    assert spreadsheet.cell("\rx") == "'\rx" and spreadsheet.cell(-3.5) == -3.5
    values = [r["value"] for r in rows if r["metric"] in ("value", "previous_band")][:6]
    assert values == ["-3.5", "yellow", "1.0", "'+green", "1.0", "'-1"]


def test_simulate_csv_neutralises_formula_cells(tmp_path: Path) -> None:
    world = World(tmp_path)  # SQLite: simulating from PostgreSQL is another matter (its copy fails today)
    world.journey(
        """
        id: hello
        name: Hello
        status: active
        trigger: {event: signed_up}
        steps:
          - id: hello
            email: {template: onboarding/welcome, subject: "-1 day left, {{ contact.first_name }}"}
        """
    )
    world.accounts({"id": "acme"})
    world.contacts({"id": FORMULA, "account_id": "acme", "email": "x@example.com", "first_name": "X"})
    world.events({"contact_id": FORMULA, "name": "signed_up", "timestamp": NOW})
    out = world.root / "timeline.csv"

    result = world.cli("simulate", "--days", "1", "--start", NOW.isoformat(), "--csv", str(out))

    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(out.open(newline="")))
    assert (row["contact_id"], row["subject"]) == ("'" + FORMULA, "'-1 day left, X")
