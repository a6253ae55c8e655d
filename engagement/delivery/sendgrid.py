"""SendGrid's v3 mail/send over pooled keep-alive connections, with its answers mapped onto the provider contract."""

from __future__ import annotations

import functools
import json
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any, Protocol

from engagement import clock as clocks
from engagement import config, errors
from engagement.delivery import connections
from engagement.delivery import retry as retries
from engagement.delivery.message import InDoubt, OutboundEmail, RateLimited, SendError

# SendGrid answers 400 to any of these in `headers`; it sets them itself from the payload's fields.
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
RATE_LIMIT_FALLBACK = timedelta(seconds=60)
PATH = "/v3/mail/send"


class Response(Protocol):
    """What the answer mapping reads (a `connections.Answer`, or an `httpx.Response`)."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def headers(self) -> Any: ...  # a case-insensitive mapping
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


@functools.lru_cache(maxsize=64)  # the same few senders on every message; parsing is not free
def _parse(text: str) -> tuple[str, str]:
    display, email = parseaddr(text)
    return " ".join(display.split()), email or text.strip()


def _address(text: str) -> dict[str, str]:
    name, email = _parse(text)
    return {"email": email, "name": name} if name else {"email": email}


def payload(message: OutboundEmail) -> dict[str, Any]:
    """The v3 mail/send JSON body for one message (what the `sendgrid` package's `Mail(...).get()` gives)."""
    recipient = {"email": message.to, "name": message.to_name} if message.to_name else {"email": message.to}
    body: dict[str, Any] = {
        "personalizations": [{"to": [recipient]}],
        "from": _address(message.sender),
        "subject": message.subject,
        # SendGrid requires text/plain before text/html and refuses an empty value
        "content": [
            {"type": kind, "value": value}
            for kind, value in (("text/plain", message.text), ("text/html", message.html))
            if value
        ],
    }
    if message.reply_to:
        body["reply_to"] = _address(message.reply_to)
    headers = {k: v for k, v in message.headers.items() if k.lower() not in RESERVED_HEADERS}
    if headers:
        body["headers"] = headers
    categories = list(dict.fromkeys(c[:MAX_CATEGORY_LENGTH] for c in message.categories if c))
    if categories:
        body["categories"] = categories[:MAX_CATEGORIES]
    if message.custom_args:
        body["custom_args"] = {k: str(v) for k, v in message.custom_args.items()}
    return body


def reason(response: Response) -> str:
    """SendGrid's own words for a refusal: each error's message and field, else the raw body."""
    try:
        found = response.json().get("errors") or []
        parts = [
            f"{e['message']} ({e['field']})" if e.get("field") else str(e["message"])
            for e in found
            if isinstance(e, dict) and e.get("message")
        ]
    except (ValueError, AttributeError, TypeError):
        parts = []
    text = "; ".join(parts) or response.text[:500] or response.reason_phrase
    return f"SendGrid {response.status_code}: {text}"


def rate_limited_until(response: Response, now: datetime) -> datetime:
    """When SendGrid allows the next request: the later of Retry-After and X-RateLimit-Reset, else in 60 s."""
    candidates = [
        when
        for when in (
            _retry_after(response.headers.get("Retry-After", "").strip(), now),
            _epoch(response.headers.get("X-RateLimit-Reset", "").strip()),
        )
        if when is not None
    ]
    return max(candidates) if candidates else now + RATE_LIMIT_FALLBACK


def rate_limit_wait(response: Response, now: datetime) -> timedelta:
    """How long SendGrid asks us to wait, from `now` (the wall-clock moment its answer arrived)."""
    return max(rate_limited_until(response, now) - now, timedelta(0))


def _retry_after(value: str, now: datetime) -> datetime | None:
    wait = retries.retry_after(value, now)
    return now + wait if wait is not None else None


def _epoch(value: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None


class SendgridEmail:
    """Sends each email as one v3 mail/send request; retries only what SendGrid cannot have kept.

    `send` is safe to call from several threads at once (one connection each, up to `max_connections`
    kept alive); `concurrency` tells dispatch how many requests it may keep in flight.
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        api_url: str = "https://api.sendgrid.com",
        *,
        timeout: float = 10.0,
        retry: config.Retry | None = None,
        transport: connections.Transport | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_connections: int = 8,
    ) -> None:
        policy = retry or config.Retry()
        base = api_url.rstrip("/")
        self.endpoint = f"{base}{PATH}"
        self.path = urllib.parse.urlsplit(self.endpoint).path
        self.concurrency = max_connections
        self.transport: connections.Transport | None = transport
        self.broken: str | None = None  # a URL no request can go to: every send fails permanently
        if transport is None:
            try:
                self.transport = connections.Connections(base, timeout=timeout, size=max_connections)
            except connections.Invalid as exc:
                self.broken = str(exc)
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.now = clock or _system_now
        self.policy = retries.retrying(policy.attempts, policy.base_seconds, policy.max_seconds, sleep=sleep)

    @classmethod
    def from_settings(cls, settings: config.Settings, **kwargs: Any) -> SendgridEmail:
        """Build the provider from `email.sendgrid.*` and `email.retry.*`."""
        sendgrid = settings.email.sendgrid
        if not sendgrid.api_key:
            raise errors.ConfigError(
                "email.sendgrid.api_key is not set: put it in config.toml or "
                "ENGAGEMENT_EMAIL__SENDGRID__API_KEY (email.provider is sendgrid)"
            )
        return cls(
            sendgrid.api_key,
            sendgrid.api_url,
            timeout=sendgrid.timeout_seconds,
            retry=settings.email.retry,
            **{"max_connections": sendgrid.connections, **kwargs},
        )

    def send(self, message: OutboundEmail) -> str:
        """POST the message; return SendGrid's X-Message-Id."""
        body = json.dumps(payload(message), separators=(",", ":")).encode()
        return retries.call(lambda: self._post(body, message.delivery_id), self.policy)

    def close(self) -> None:
        """Close the pooled connections."""
        if self.transport is not None:
            self.transport.close()

    def _post(self, body: bytes, delivery_id: str) -> str:
        if self.transport is None:
            raise SendError(f"SendGrid request invalid: {self.broken}", permanent=True)
        try:
            response = self.transport.post(self.path, body, self.headers)
        except connections.NotSent as exc:
            raise retries.Transient(f"SendGrid unreachable: {exc}") from exc
        except connections.Invalid as exc:
            raise SendError(f"SendGrid request invalid: {exc}", permanent=True) from exc
        except connections.NoAnswer as exc:
            # sent, or partly sent, with no answer: SendGrid may have accepted it
            raise InDoubt(f"SendGrid gave no answer after the request was sent: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            # SendGrid always sends X-Message-Id with a 202; without one our delivery id still finds the message
            return response.headers.get("X-Message-Id") or delivery_id
        if status == 429:
            heard = self.now()  # the headers are wall-clock: turned into a wait here, at receipt
            raise RateLimited(reason(response), rate_limit_wait(response, heard), heard_at=heard)
        if status >= 500:
            raise retries.Transient(reason(response))
        raise SendError(reason(response), permanent=True)


def _system_now() -> datetime:
    return clocks.SystemClock().now()
