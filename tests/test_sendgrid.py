"""The SendGrid provider against a real SendGrid-compatible server on 127.0.0.1: every answer maps to the
right outcome, retries happen only where nothing can have been accepted, and nothing is accepted twice."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sendgrid.helpers.mail import Category, CustomArg, From, Header, Mail, ReplyTo, To

from engagement import config, errors
from engagement.delivery.message import InDoubt, OutboundEmail, RateLimited, SendError
from engagement.delivery.sendgrid import SendgridEmail, payload, rate_limited_until
from engagement.testing.sendgrid_server import Ledger, SendgridProcess, SendgridServer

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
LINK = "https://engage.example.com/unsubscribe/Y29udGFjdC0xMjM0NTY3ODkw.q7Vw2x9Zb1c3d5e7f9h1j3k5m7"
RETRY = config.Retry(attempts=4, base_seconds=0.25, max_seconds=8.0)


def outbound(delivery_id: str = "0b7e4c1a-3f0e-5d6c-9a8b-7c6d5e4f3a2b", **changes: Any) -> OutboundEmail:
    fields: dict[str, Any] = {
        "delivery_id": delivery_id,
        "to": "ada@example.com",
        "to_name": "Ada Lovelace",
        "sender": "Chartwell <success@chartwell.example>",
        "reply_to": "Chartwell Customer Success <help@chartwell.example>",
        "subject": "Welcome aboard, Ada",
        "html": "<p>Hi Ada,</p><p>Welcome.</p>",
        "text": "Hi Ada,\n\nWelcome.\n",
        "sent_at": NOW,
        "headers": {
            "List-Unsubscribe": f"<{LINK}>, <mailto:unsubscribe@chartwell.example?subject=unsubscribe>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Engagement-Delivery": delivery_id,
        },
        "categories": ("onboarding-first-report", "onboarding-first-report/welcome"),
        "custom_args": {
            "delivery_id": delivery_id,
            "journey_id": "onboarding-first-report",
            "step_id": "welcome",
        },
    }
    return OutboundEmail(**{**fields, **changes})


class Sleeps:
    """Stands in for time.sleep: records each backoff delay instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def opened() -> Iterator[list[SendgridEmail]]:
    providers: list[SendgridEmail] = []
    yield providers
    for each in providers:
        each.close()


@pytest.fixture
def provider(
    server: SendgridServer, sleeps: Sleeps, opened: list[SendgridEmail]
) -> Callable[..., SendgridEmail]:
    """Makes a provider for the server: short timeout, recorded sleeps, a fixed clock."""

    def make(**kwargs: Any) -> SendgridEmail:
        options: dict[str, Any] = {"timeout": 2.0, "retry": RETRY, "sleep": sleeps, "clock": lambda: NOW}
        made = SendgridEmail(server.api_key, server.url, **{**options, **kwargs})
        opened.append(made)
        return made

    return make


def statuses(ledger: Ledger) -> list[int]:
    return [r.status for r in ledger.requests()]


def test_an_accepted_message_returns_sendgrids_x_message_id(
    server: SendgridServer, provider: Callable[..., SendgridEmail]
) -> None:
    message_id = provider().send(outbound())

    [accepted] = server.ledger.accepted()
    assert message_id == accepted.message_id
    assert len(message_id) == 22
    assert accepted.delivery_id == outbound().delivery_id
    assert statuses(server.ledger) == [202]


def test_the_server_receives_the_documented_v3_payload(
    server: SendgridServer, provider: Callable[..., SendgridEmail]
) -> None:
    message = outbound(headers={**outbound().headers, "Reply-To": "someone@else.example"})

    provider().send(message)

    [body] = server.received()
    assert body["personalizations"] == [{"to": [{"email": "ada@example.com", "name": "Ada Lovelace"}]}]
    assert body["from"] == {"email": "success@chartwell.example", "name": "Chartwell"}
    assert body["reply_to"] == {"email": "help@chartwell.example", "name": "Chartwell Customer Success"}
    assert body["subject"] == "Welcome aboard, Ada"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"] == message.text
    assert body["content"][1]["value"] == message.html
    assert body["headers"] == {
        "List-Unsubscribe": f"<{LINK}>, <mailto:unsubscribe@chartwell.example?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Engagement-Delivery": message.delivery_id,
    }  # the reserved Reply-To header is left out: SendGrid would refuse the whole message
    assert body["categories"] == ["onboarding-first-report", "onboarding-first-report/welcome"]
    assert body["custom_args"] == {
        "delivery_id": message.delivery_id,
        "journey_id": "onboarding-first-report",
        "step_id": "welcome",
    }


def test_the_fast_payload_is_what_the_sendgrid_packages_helpers_build() -> None:
    message = outbound()

    mail = Mail(
        from_email=From(message.sender),
        to_emails=To(message.to, message.to_name),
        subject=message.subject,
        plain_text_content=message.text,
        html_content=message.html,
    )
    mail.reply_to = ReplyTo(message.reply_to)
    mail.header = [Header(name, value) for name, value in message.headers.items()]
    mail.category = [Category(c) for c in reversed(message.categories)]  # the helpers add each in front
    mail.custom_arg = [CustomArg(k, v) for k, v in message.custom_args.items()]

    assert payload(message) == mail.get()


def test_the_payload_keeps_sendgrids_limits_on_categories() -> None:
    message = outbound(categories=tuple(f"c{i}" for i in range(12)) + ("x" * 300, "c1"))

    categories = payload(message)["categories"]

    assert categories == [f"c{i}" for i in range(10)]


def test_a_400_fails_permanently_with_sendgrids_reason(
    server: SendgridServer, sleeps: Sleeps, provider: Callable[..., SendgridEmail]
) -> None:
    with pytest.raises(SendError) as refused:
        provider().send(outbound(to="ada-at-example.com"))

    assert refused.value.permanent
    assert not isinstance(refused.value, RateLimited | InDoubt)
    assert refused.value.reason == (
        "SendGrid 400: Does not contain a valid address. (personalizations.0.to.0.email)"
    )
    assert statuses(server.ledger) == [400]
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (lambda b: b.clear(), ["personalizations", "from", "subject", "content"]),
        (lambda b: b["content"].reverse(), ["content"]),
        (lambda b: b.update(categories=[f"c{i}" for i in range(11)]), ["categories"]),
        (lambda b: b["headers"].update({"Subject": "hi"}), ["headers.Subject"]),
        (lambda b: b["from"].update(email="nobody"), ["from.email"]),
        (lambda b: b["custom_args"].update(attempt=2), ["custom_args.attempt"]),
    ],
    ids=["empty", "html-first", "eleven-categories", "reserved-header", "bad-from", "number-in-custom-args"],
)
def test_the_server_refuses_an_invalid_payload_with_sendgrids_error_body(
    server: SendgridServer, change: Any, fields: list[str]
) -> None:
    body = payload(outbound())
    change(body)

    response = httpx.post(
        f"{server.url}/v3/mail/send", json=body, headers={"Authorization": f"Bearer {server.api_key}"}
    )

    assert response.status_code == 400
    found = response.json()["errors"]
    assert [e["field"] for e in found] == fields
    assert all(e["message"] and e["help"].startswith("http://sendgrid.com/docs/") for e in found)
    assert server.ledger.accepted() == []


@pytest.mark.parametrize(
    ("authorization", "text"),
    [
        (None, "authorization required"),
        ("Bearer SG.wrong", "The provided authorization grant is invalid, expired, or revoked"),
    ],
)
def test_a_missing_or_wrong_api_key_is_refused_with_401(
    server: SendgridServer, authorization: str | None, text: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = httpx.post(f"{server.url}/v3/mail/send", json=payload(outbound()), headers=headers)

    assert response.status_code == 401
    assert response.json() == {"errors": [{"field": None, "message": text, "help": None}]}


def test_a_wrong_api_key_fails_permanently(
    server: SendgridServer, sleeps: Sleeps, opened: list[SendgridEmail]
) -> None:
    wrong = SendgridEmail("SG.revoked", server.url, timeout=2.0, retry=RETRY, sleep=sleeps)
    opened.append(wrong)

    with pytest.raises(SendError) as refused:
        wrong.send(outbound())

    assert refused.value.permanent
    assert "401" in refused.value.reason and "invalid, expired, or revoked" in refused.value.reason
    assert statuses(server.ledger) == [401]


def test_a_429_is_rate_limited_until_x_ratelimit_reset(
    server: SendgridServer, sleeps: Sleeps, provider: Callable[..., SendgridEmail]
) -> None:
    reset = int(NOW.timestamp()) + 90
    server.rate_limit_next(1, reset_at=reset)

    with pytest.raises(RateLimited) as limited:
        provider().send(outbound())

    assert limited.value.until == NOW + timedelta(seconds=90)
    assert not limited.value.permanent
    assert "too many requests" in limited.value.reason
    assert statuses(server.ledger) == [429]  # not retried here: the dispatcher waits until `until`
    assert sleeps.delays == []


def test_a_429_with_retry_after_is_rate_limited_for_that_many_seconds(
    server: SendgridServer, provider: Callable[..., SendgridEmail]
) -> None:
    server.rate_limit_next(1, reset_at=int(NOW.timestamp()), retry_after=30)

    with pytest.raises(RateLimited) as limited:
        provider().send(outbound())

    assert limited.value.until == NOW + timedelta(seconds=30)
    assert statuses(server.ledger) == [429]


def test_the_server_sends_sendgrids_rate_limit_headers_and_body(server: SendgridServer) -> None:
    reset = server.rate_limit_next(1, reset_after=5)

    response = httpx.post(
        f"{server.url}/v3/mail/send",
        json=payload(outbound()),
        headers={"Authorization": f"Bearer {server.api_key}"},
    )

    assert response.status_code == 429
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Limit"]) > 0
    assert int(response.headers["X-RateLimit-Reset"]) == reset
    assert response.json() == {"errors": [{"field": None, "message": "too many requests"}]}


def test_once_the_limit_is_spent_every_request_gets_429_until_the_reset(server: SendgridServer) -> None:
    def post() -> int:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        return httpx.post(f"{server.url}/v3/mail/send", json=payload(outbound()), headers=headers).status_code

    server.rate_limit_until(reset_after=30)
    assert [post(), post(), post()] == [429, 429, 429]

    server.clear_faults()
    server.rate_limit_until(reset_at=int(time.time()) - 1)  # a reset already passed
    assert post() == 202


def test_a_429_without_any_wait_header_waits_a_minute() -> None:
    assert rate_limited_until(httpx.Response(429), NOW) == NOW + timedelta(seconds=60)


def test_a_500_then_202_is_retried_with_growing_jittered_backoff(
    server: SendgridServer, sleeps: Sleeps, provider: Callable[..., SendgridEmail]
) -> None:
    server.fail_next(2, status=500)

    message_id = provider().send(outbound())

    assert statuses(server.ledger) == [500, 500, 202]
    assert [a.message_id for a in server.ledger.accepted()] == [message_id]
    first, second = sleeps.delays
    base = RETRY.base_seconds
    assert base <= first <= 2 * base  # base·2⁰ plus up to `base` of jitter
    assert 2 * base <= second <= 3 * base  # base·2¹ plus up to `base` of jitter
    assert second > first
    assert first != base and second != 2 * base  # jittered, not the bare exponential


def test_backoff_never_exceeds_the_configured_cap(
    server: SendgridServer, sleeps: Sleeps, provider: Callable[..., SendgridEmail]
) -> None:
    server.fail_next(5, status=503)
    capped = config.Retry(attempts=6, base_seconds=1.0, max_seconds=3.0)

    provider(retry=capped).send(outbound())

    assert len(sleeps.delays) == 5
    assert all(d <= 3.0 for d in sleeps.delays)
    assert sleeps.delays[-1] == 3.0


def test_a_5xx_that_persists_fails_after_the_configured_attempts(
    server: SendgridServer, sleeps: Sleeps, provider: Callable[..., SendgridEmail]
) -> None:
    server.fail_next(100, status=503)

    with pytest.raises(SendError) as failed:
        provider().send(outbound())

    assert not failed.value.permanent
    assert not isinstance(failed.value, RateLimited | InDoubt)
    assert "SendGrid 503: service unavailable" in failed.value.reason
    assert "after 4 attempts" in failed.value.reason
    assert statuses(server.ledger) == [503] * RETRY.attempts
    assert len(sleeps.delays) == RETRY.attempts - 1
    assert server.ledger.accepted() == []


def test_a_refused_connection_is_retried_then_fails_and_reaches_no_server(
    tmp_path: Path, sleeps: Sleeps, opened: list[SendgridEmail]
) -> None:
    with SendgridServer(db=tmp_path / "sendgrid.db") as stopped:
        url, key = stopped.url, stopped.api_key
    with socket.socket() as probe:  # nothing listens on that port any more
        assert probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) != 0

    nowhere = SendgridEmail(key, url, timeout=2.0, retry=RETRY, sleep=sleeps)
    opened.append(nowhere)

    with pytest.raises(SendError) as failed:
        nowhere.send(outbound())

    assert not failed.value.permanent
    assert not isinstance(failed.value, InDoubt)
    assert isinstance(failed.value.__cause__, Exception)
    assert "unreachable" in failed.value.reason and "ConnectError" in failed.value.reason
    assert len(sleeps.delays) == RETRY.attempts - 1
    assert Ledger(tmp_path / "sendgrid.db").requests() == []


def test_a_response_slower_than_the_read_timeout_is_in_doubt_and_not_retried(
    server: SendgridServer, sleeps: Sleeps, provider: Callable[..., SendgridEmail]
) -> None:
    server.slow_next(1, delay=2.0)
    impatient = provider(timeout=0.3)

    with pytest.raises(InDoubt) as doubt:
        impatient.send(outbound())

    assert "ReadTimeout" in doubt.value.reason
    assert sleeps.delays == []
    assert statuses(server.ledger) == [202]  # SendGrid did take it: exactly why it must not be sent again
    assert len(server.ledger.accepted()) == 1
    assert impatient.send(outbound("another-delivery"))  # the pool recovers for the next message


def test_from_settings_names_the_missing_api_key() -> None:
    settings = config.Settings(email=config.Email(provider="sendgrid"))

    with pytest.raises(errors.ConfigError, match=r"email\.sendgrid\.api_key"):
        SendgridEmail.from_settings(settings)


def test_from_settings_sends_to_the_configured_url(
    server: SendgridServer, sleeps: Sleeps, opened: list[SendgridEmail]
) -> None:
    settings = config.Settings(
        email=config.Email(
            provider="sendgrid",
            sendgrid=config.Sendgrid(api_key=server.api_key, api_url=server.url + "/", timeout_seconds=2),
            retry=config.Retry(attempts=2, base_seconds=0.1, max_seconds=1),
        )
    )

    sendgrid = SendgridEmail.from_settings(settings, sleep=sleeps)
    opened.append(sendgrid)
    sendgrid.send(outbound())

    assert sendgrid.endpoint == f"{server.url}/v3/mail/send"
    assert statuses(server.ledger) == [202]


def test_the_server_as_a_process_records_into_a_file_another_process_reads(
    tmp_path: Path, sleeps: Sleeps, opened: list[SendgridEmail]
) -> None:
    db = tmp_path / "sendgrid.db"
    with SendgridProcess(db) as server:
        sendgrid = SendgridEmail(server.api_key, server.url, timeout=2.0, retry=RETRY, sleep=sleeps)
        opened.append(sendgrid)
        server.fail_next(1, status=500)
        sendgrid.send(outbound("first"))
        server.rate_limit_next(1, reset_after=1)
        with pytest.raises(RateLimited):
            sendgrid.send(outbound("second"))
        sendgrid.send(outbound("second"))
        assert [m["custom_args"]["delivery_id"] for m in server.received()] == ["first", "second"]

    ledger = Ledger(db)
    assert [(r.status, r.delivery_id) for r in ledger.requests()] == [
        (500, "first"),
        (202, "first"),
        (429, "second"),
        (202, "second"),
    ]
    counts = ledger.counts()
    assert (counts.requests, counts.accepted, counts.delivery_ids, counts.duplicates) == (4, 2, 2, 0)
