"""Surveys end to end (issue 17): the survey email's links on the outbox, the landing page that records only
on POST, the in-app answer endpoint, `surveys.min_interval`, and a detractor entering a journey."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_world import NOW, World, one_email

from engagement.api.app import create_app
from engagement.api.auth import contact_token
from engagement.clock import ManualClock
from engagement.delivery import survey_links
from engagement.delivery.outbox import OutboxEmail
from engagement.responses import surveys
from engagement.store import schema
from engagement.testing.served import listening, serving

BACKENDS = ("sqlite", "postgresql")
d, a, r, n = schema.deliveries, schema.survey_answers, schema.responses, schema.nudges
LATER = NOW + timedelta(hours=2)


def survey_journey(
    world: World,
    journey_id: str = "nps-check",
    trigger: str = "signed_up",
    kind: str = "nps",
    channel: str = "email",
) -> None:
    subject = '\n      subject: "One question, {{ contact.first_name }}"' if channel == "email" else ""
    world.journey(
        f"""
        id: {journey_id}
        name: Survey {journey_id}
        status: active
        trigger: {{event: {trigger}}}
        steps:
          - id: ask
            survey:
              kind: {kind}
              channel: {channel}
              question: "How likely are you to recommend Chartwell to a colleague?"{subject}
              comment: "What is the main reason for your score?"
          - id: after
            notify: {{webhook: csm-alerts, text: "asked {{{{ contact.first_name }}}}"}}
        """.replace("\n      subject", "\n              subject")
    )


def sent_email(folder: Path, delivery_id: str) -> EmailMessage:
    parsed = message_from_bytes((folder / f"{delivery_id}.eml").read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+/s/[^"]+)"', html)]


class Served:
    """A world whose survey email went out through the outbox, and the engine's API serving its links."""

    def __init__(self, world: World, url: str, http: httpx.Client, clock: ManualClock) -> None:
        self.world, self.url, self.http, self.clock = world, url, http, clock
        [self.delivery] = world.rows(d, d.c.journey_id == "nps-check", d.c.step_id == "ask")
        self.email = sent_email(world.root / "outbox", self.delivery["id"])
        html = self.email.get_body(("html",))
        assert html is not None
        self.html = str(html.get_content())
        self.links = links(self.html)

    def answers(self) -> list[Any]:
        return self.world.rows(a)

    def answered(self) -> list[Any]:
        return self.world.rows(r, r.c.kind == "answered")


@pytest.fixture
def served(world: World) -> Iterator[Served]:
    sock, url = listening()
    world.configure(f'[server]\npublic_url = "{url}"\n')
    survey_journey(world)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.engine_with(OutboxEmail(world.root / "outbox")).tick(NOW)
    clock = ManualClock(LATER)
    with (
        serving(create_app(world.settings, database=world.db, clock=clock), sock),
        httpx.Client(timeout=20) as http,
    ):
        yield Served(world, url, http, clock)


DETRACTORS = """
    id: detractors
    name: Detractor follow-up
    status: active
    trigger: {condition: {survey: {kind: nps, score: {lte: 6}, within: 90d}}}
    steps:
      - id: alert
        notify: {webhook: csm-alerts, text: "Detractor: {{ contact.first_name }}"}
    """


def token_of(link: str) -> str:
    return link.split("/s/", 1)[1].split("/")[0]


def test_the_survey_email_links_every_score_to_the_engine_and_carries_footer_and_unsubscribe(
    served: Served,
) -> None:
    assert served.delivery["status"] == "sent" and served.delivery["channel"] == "email"
    assert served.delivery["survey_kind"] == "nps"
    assert served.email["Subject"] == "One question, C000"
    assert served.email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [link.rsplit("/", 1)[1] for link in served.links] == [str(s) for s in range(11)]
    assert {link.rsplit("/", 1)[0] for link in served.links} == {
        f"{served.url}/s/{token_of(served.links[0])}"
    }
    assert "How likely are you to recommend Chartwell to a colleague?" in served.html
    assert "500 Example Street" in served.html and "/unsubscribe/" in served.html
    # bulletproof buttons: each score a table cell with its colour on the cell, and the CSS inlined
    assert served.html.count('bgcolor="#2563eb"') == 11
    assert re.search(r'<a [^>]*href="[^"]+/s/[^"]+/7"[^>]*style="[^"]*display: ?block', served.html)
    text = served.email.get_body(("plain",))
    assert text is not None and f"10: {served.links[10]}" in str(text.get_content())
    link = survey_links.read_token(token_of(served.links[0]), served.world.settings.unsubscribe.secret, LATER)
    assert link.delivery_id == served.delivery["id"]
    assert link.expires_at == NOW + timedelta(days=60)


def test_opening_a_link_records_nothing_the_pages_post_records_once_and_a_second_post_updates(
    served: Served,
) -> None:
    page = served.http.get(served.links[3])
    assert page.status_code == 200
    assert re.search(r'value="3" required checked', page.text)
    assert page.headers["referrer-policy"] == "no-referrer"
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    served.http.get(served.links[9])  # a mail scanner opening every link
    assert served.answers() == [] and served.answered() == []

    first = served.http.post(
        served.url + unescape(action.group(1)), data={"score": "3", "comment": "Too slow"}
    )
    assert first.status_code == 200 and "Thank you" in first.text
    [answer] = served.answers()
    assert (answer["score"], answer["comment"], answer["kind"], answer["contact_id"]) == (
        3,
        "Too slow",
        "nps",
        "c000",
    )
    assert (answer["account_id"], answer["journey_id"], answer["step_id"]) == ("acme", "nps-check", "ask")
    assert len(served.answered()) == 1

    served.clock.advance(timedelta(minutes=5))
    again = served.http.post(
        served.url + unescape(action.group(1)), data={"score": "8", "comment": "Better now"}
    )
    assert again.status_code == 200 and "replaced" in again.text
    [answer] = served.answers()
    assert (answer["score"], answer["comment"]) == (8, "Better now")
    assert answer["answered_at"] == LATER + timedelta(minutes=5)
    assert len(served.answered()) == 1  # one `answered` response per delivery
    reopened = served.http.get(served.links[8])
    assert "Better now" in reopened.text


def test_expired_tampered_and_other_delivery_tokens_get_a_clear_page_and_write_nothing(
    served: Served, world: World
) -> None:
    token = token_of(served.links[0])
    secret = world.settings.unsubscribe.secret
    payload, mac = token.split(".")
    other = survey_links.make_token("not-a-survey-delivery", secret, LATER + timedelta(days=1))
    forged = survey_links.make_token(
        served.delivery["id"], "another-secret-" + "x" * 32, LATER + timedelta(days=1)
    )
    # the first character: base64's last one may carry only padding bits, which decode to the same bytes
    tampered = ("A" if payload[0] != "A" else "B") + payload[1:] + "." + mac
    for bad, status, says in (
        (tampered, 404, "not valid"),
        (forged, 404, "not valid"),
        (other, 404, "no longer open"),
        ("garbage", 404, "not valid"),
    ):
        for answer in (
            served.http.get(f"{served.url}/s/{bad}/5"),
            served.http.post(f"{served.url}/s/{bad}", data={"score": "5"}),
        ):
            assert answer.status_code == status and says in answer.text, (bad, answer.text)
    for path, form, field in (
        ("/s/{t}/11", None, "score"),
        ("/s/{t}", {"score": "11"}, "score"),
        ("/s/{t}", {"score": "x"}, "score"),
        ("/s/{t}", {"score": "4", "comment": "x" * 2001}, "comment"),
        ("/s/{t}", {"score": "4", "comment": "a\x00b"}, "comment"),
    ):
        url = served.url + path.format(t=token)
        answer = served.http.get(url) if form is None else served.http.post(url, data=form)
        assert answer.status_code == 422 and f"{field}:" in answer.text, answer.text
    served.clock.set(NOW + timedelta(days=60, seconds=1))
    for answer in (
        served.http.get(served.links[5]),
        served.http.post(f"{served.url}/s/{token}", data={"score": "5"}),
    ):
        assert answer.status_code == 410 and "expired" in answer.text
    assert served.answers() == [] and served.answered() == []


def test_a_detractor_enters_a_survey_condition_journey_at_the_next_tick_even_with_the_api_clock_behind(
    served: Served, world: World
) -> None:
    world.journey(DETRACTORS)
    world.tick(LATER)
    assert world.count(schema.enrollments, schema.enrollments.c.journey_id == "detractors") == 0
    served.clock.set(
        LATER - timedelta(minutes=1)
    )  # answered "before" the last tick: only the change log shows it
    answer = served.http.post(f"{served.url}/s/{token_of(served.links[0])}", data={"score": "2"})
    assert answer.status_code == 200
    world.tick(LATER + timedelta(minutes=1))
    [enrolled] = world.rows(schema.enrollments, schema.enrollments.c.journey_id == "detractors")
    assert enrolled["subject_id"] == "c000"


def test_an_answer_stamped_before_the_last_tick_is_still_seen_by_the_next_incremental_tick(
    world: World,
) -> None:
    world.configure("[scoring.weights]\nsurvey_answered = 0.0\n")  # no score moves with it: the answer alone
    world.journey(DETRACTORS)
    survey_journey(world)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)
    world.tick(LATER)
    [delivery] = world.rows(d, d.c.step_id == "ask")
    with world.db.begin() as conn:
        found = surveys.find(conn, delivery["id"])
        assert found is not None
        surveys.record(world.db, conn, found, surveys.Answer(4, None), LATER - timedelta(minutes=1), "email")
    world.tick(LATER + timedelta(minutes=1))
    assert world.count(schema.enrollments, schema.enrollments.c.journey_id == "detractors") == 1


def test_min_interval_skips_a_second_survey_of_the_same_kind_and_the_journey_goes_on(world: World) -> None:
    survey_journey(world)
    survey_journey(world, "nps-again", trigger="renewed")
    survey_journey(world, "csat-check", trigger="ticket_closed", kind="csat")
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)
    later = NOW + timedelta(days=1)
    world.events(
        {"contact_id": "c000", "name": "renewed", "timestamp": later},
        {"contact_id": "c000", "name": "ticket_closed", "timestamp": later},
    )
    world.tick(later)
    status = {(row["journey_id"], row["step_id"]): row["status"] for row in world.rows(d)}
    assert status == {
        ("nps-check", "ask"): "sent",
        ("nps-check", "after"): "sent",
        ("nps-again", "ask"): "skipped_recent",
        ("nps-again", "after"): "sent",  # the journey went on
        ("csat-check", "ask"): "sent",  # another kind is asked
        ("csat-check", "after"): "sent",
    }
    assert len(world.email.sent) == 2
    world.events({"contact_id": "c000", "name": "renewed", "timestamp": NOW + timedelta(days=95)})
    world.journey(
        world.journeys.joinpath("nps-again.yaml")
        .read_text()
        .replace("status: active", "status: active\nre_entry: always")
    )
    world.tick(NOW + timedelta(days=95))
    asked = world.rows(d, d.c.journey_id == "nps-again", d.c.step_id == "ask", d.c.status == "sent")
    assert len(asked) == 1  # past the interval it is asked again


def test_survey_emails_count_against_the_weekly_cap(world: World) -> None:
    world.configure("[limits]\nemails_per_contact_per_week = 1\n")
    world.journey(one_email())
    survey_journey(world)
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)
    statuses = sorted(
        (row["journey_id"], row["status"], row["hold_code"]) for row in world.rows(d, d.c.step_id != "after")
    )
    assert len(world.email.sent) == 1
    assert ("queued", "weekly_cap") in {(s, h) for _, s, h in statuses}


@pytest.fixture
def inapp(world: World) -> Iterator[tuple[World, str, httpx.Client]]:
    survey_journey(world, "csat-inapp", kind="csat", channel="in_app")
    world.journey(
        """
        id: plain-nudge
        name: Plain nudge
        status: active
        trigger: {event: signed_up}
        steps:
          - id: tip
            in_app: {title: A tip}
        """
    )
    world.people(2)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "c001")))
    world.tick(NOW)
    sock, url = listening()
    with (
        serving(create_app(world.settings, database=world.db, clock=ManualClock(LATER)), sock),
        httpx.Client(timeout=20) as http,
    ):
        yield world, url, http


def test_the_in_app_answer_endpoint_checks_the_scale_records_updates_and_hides_the_answered_survey(
    inapp: tuple[World, str, httpx.Client],
) -> None:
    world, url, http = inapp
    [survey] = world.rows(n, n.c.journey_id == "csat-inapp", n.c.contact_id == "c000")
    [plain] = world.rows(n, n.c.journey_id == "plain-nudge", n.c.contact_id == "c000")
    mine = {"Authorization": f"Bearer {contact_token('c000', world.settings.inapp.token_secret)}"}
    theirs = {"Authorization": f"Bearer {contact_token('c001', world.settings.inapp.token_secret)}"}
    listed = http.get(f"{url}/v1/contacts/c000/nudges", headers=mine).json()["nudges"]
    assert {x["id"]: x["survey"] for x in listed} == {
        survey["id"]: {"kind": "csat", "comment": "What is the main reason for your score?"},
        plain["id"]: None,
    }
    answer = f"{url}/v1/nudges/{survey['id']}/answer"
    for body, field in (
        ({"score": 0}, "body.score"),
        ({"score": 6}, "body.score"),
        ({"score": "4"}, "score"),
        ({"score": 4, "comment": "x" * 2001}, "body.comment"),
        ({"score": 4, "extra": 1}, "extra"),
    ):
        refused = http.post(answer, json=body, headers=mine)
        assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == field, refused.text
    assert http.post(answer, json={"score": 4}, headers=theirs).status_code == 401
    not_survey = http.post(f"{url}/v1/nudges/{plain['id']}/answer", json={"score": 4}, headers=mine)
    assert not_survey.status_code == 422 and not_survey.json()["detail"][0]["field"] == "path.nudge_id"
    assert world.rows(a) == []

    first = http.post(answer, json={"score": 2, "comment": "Slow"}, headers=mine)
    assert first.status_code == 200 and first.json()["first"] is True
    second = http.post(answer, json={"score": 5}, headers=mine)
    assert second.status_code == 200 and second.json()["first"] is False
    [row] = world.rows(a)
    assert (row["kind"], row["score"], row["comment"], row["contact_id"]) == ("csat", 5, None, "c000")
    assert sorted(x["kind"] for x in world.rows(r, r.c.delivery_id == survey["delivery_id"])) == [
        "answered",
        "seen",
    ]
    left = http.get(f"{url}/v1/contacts/c000/nudges", headers=mine).json()["nudges"]
    assert [x["id"] for x in left] == [plain["id"]]


def test_a_survey_step_is_validated_with_file_line_and_field(world: World) -> None:
    path = world.journey(
        """
        id: bad-survey
        name: Bad survey
        status: active
        trigger: {event: signed_up}
        steps:
          - id: ask
            survey:
              kind: promoter
              channel: email
              question: "How likely?"
          - id: ask-again
            survey:
              kind: csat
              channel: in_app
              question: "Hello {{ contact.nickname.first }}"
        """
    )
    result = world.cli("validate", str(path))
    assert result.exit_code != 0
    out = " ".join(result.output.split())
    assert "bad-survey.yaml:9: steps[0].survey.kind" in out, out
    assert "steps[1].survey.question" in out and "undefined" in out, out


def test_a_survey_condition_is_validated_in_journey_files(world: World) -> None:
    path = world.journey(
        """
        id: bad-condition
        name: Bad condition
        status: active
        trigger: {condition: {survey: {kind: ces, score: {lte: 6.5}, since: 3d}}}
        steps:
          - id: alert
            notify: {webhook: csm-alerts, text: hi}
        """
    )
    out = " ".join(world.cli("validate", str(path)).output.split())
    for field in (
        "trigger.condition.survey.kind",
        "trigger.condition.survey.since",
        "trigger.condition.survey.score.lte",
    ):
        assert field in out, out


def test_preview_shows_a_survey_email_and_an_in_app_survey(world: World) -> None:
    survey_journey(world)
    survey_journey(world, "csat-inapp", kind="csat", channel="in_app")
    world.people(1)
    email = world.cli("preview", "nps-check", "ask", "--contact", "c000")
    assert email.exit_code == 0, email.output
    assert "One question, C000" in email.output and "/s/" in email.output
    inapp = world.cli("preview", "csat-inapp", "ask", "--contact", "c000")
    assert inapp.exit_code == 0, inapp.output
    assert '"survey_kind": "csat"' in inapp.output
