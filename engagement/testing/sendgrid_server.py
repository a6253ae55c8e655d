"""A SendGrid-compatible v3 mail/send server on 127.0.0.1, for tests, crash tests and benchmarks.

In a thread of the test process::

    with SendgridServer() as server:
        provider = SendgridEmail(server.api_key, server.url, timeout=2)
        server.rate_limit_next(1, reset_after=3)
        ...
        assert server.ledger.counts().duplicates == 0

As a process of its own (the crash test kills workers while it keeps counting)::

    python -m engagement.testing.sendgrid_server --db sendgrid.db [--port 0] [--key SG.test-key]

prints ``listening on http://127.0.0.1:PORT`` once it accepts connections; `SendgridProcess` starts it
from Python and has the same fault controls (over HTTP, under ``/__control/``).

Every request (arrival time, status, delivery id) and every accepted message (delivery id, X-Message-Id)
is committed to an SQLite file in WAL mode before the response leaves, so any process can read the
counts with `Ledger(path)` while the server runs or after it stopped (an existing file is appended to).
A request whose client vanished before sending all of it is recorded as 499.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import uvicorn

DEFAULT_KEY = "SG.test-key"
MAX_BODY = 20 * 1024 * 1024  # SendGrid's limit for a mail/send request
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message."
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
EMAIL = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\".]+$")
CONTENT_RANK = {"text/plain": 0, "text/html": 1}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Error = dict[str, Any]


# -- what SendGrid refuses ------------------------------------------------------------------------


def _error(message: str, field: str | None, anchor: str | None) -> Error:
    return {"message": message, "field": field, "help": HELP + anchor if anchor else None}


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _address_errors(value: Any, field: str, what: str, anchor: str) -> list[Error]:
    if not isinstance(value, dict) or not isinstance(value.get("email"), str):
        return [_error(f"The {what} object must have an email parameter.", field, anchor)]
    if not EMAIL.match(value["email"]):
        return [_error(f"The {what} email does not contain a valid address.", f"{field}.email", anchor)]
    if "name" in value and not isinstance(value["name"], str):
        return [
            _error(
                f"Invalid type. Expected: string, given: {_json_type(value['name'])}.",
                f"{field}.name",
                anchor,
            )
        ]
    return []


def _personalization_errors(personalizations: Any) -> list[Error]:
    if not isinstance(personalizations, list) or not personalizations:
        return [
            _error(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
                "personalizations",
            )
        ]
    if len(personalizations) > 1000:
        return [
            _error(
                "The personalization block is limited to 1000 personalizations per API request. You have "
                f"provided {len(personalizations)} personalizations. Please consider splitting this into "
                "multiple requests and resending your request.",
                "personalizations",
                "personalizations",
            )
        ]
    errors: list[Error] = []
    for i, p in enumerate(personalizations):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            errors.append(
                _error(
                    "The to array is required for all personalization objects, and must have at least one "
                    "email object with a valid email address.",
                    f"personalizations.{i}.to",
                    "personalizations.to",
                )
            )
            continue
        for j, recipient in enumerate(to):
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(email, str) or not EMAIL.match(email):
                errors.append(
                    _error(
                        "Does not contain a valid address.",
                        f"personalizations.{i}.to.{j}.email",
                        "personalizations.to",
                    )
                )
    return errors


def _content_errors(mail: dict[str, Any]) -> list[Error]:
    content = mail.get("content")
    if content is None and mail.get("template_id"):
        return []
    if not isinstance(content, list) or not content:
        return [
            _error(
                "Unless a valid template_id is provided, the content parameter is required. There must be at "
                "least one defined content block. We typically suggest both text/plain and text/html blocks "
                "are included, but only one block is required.",
                "content",
                "content",
            )
        ]
    errors: list[Error] = []
    ranks = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        value = block.get("value") if isinstance(block, dict) else None
        if not isinstance(kind, str) or not kind:
            errors.append(
                _error(
                    "The content type must be a string at least one character in length.",
                    f"content.{i}.type",
                    "content.type",
                )
            )
        if not isinstance(value, str) or not value:
            errors.append(
                _error(
                    "The content value must be a string at least one character in length.",
                    f"content.{i}.value",
                    "content.value",
                )
            )
        ranks.append(CONTENT_RANK.get(kind, 2) if isinstance(kind, str) else 2)
    if ranks != sorted(ranks):
        errors.append(
            _error(
                "If present, text/plain content must be first, followed by text/html, followed by any other "
                "content.",
                "content",
                "content.type",
            )
        )
    return errors


def _extras_errors(mail: dict[str, Any]) -> list[Error]:
    errors: list[Error] = []
    headers = mail.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            errors.append(
                _error(f"Invalid type. Expected: object, given: {_json_type(headers)}.", "headers", "headers")
            )
        else:
            for name, value in headers.items():
                if name.lower() in RESERVED_HEADERS:
                    errors.append(
                        _error(
                            f"The header {name!r} is a reserved header and cannot be set in headers.",
                            f"headers.{name}",
                            "headers",
                        )
                    )
                elif not isinstance(value, str):
                    errors.append(
                        _error(
                            f"Invalid type. Expected: string, given: {_json_type(value)}.",
                            f"headers.{name}",
                            "headers",
                        )
                    )
    categories = mail.get("categories")
    if categories is not None:
        if not isinstance(categories, list):
            errors.append(
                _error(
                    f"Invalid type. Expected: array, given: {_json_type(categories)}.",
                    "categories",
                    "categories",
                )
            )
        elif len(categories) > 10:
            errors.append(
                _error("You may not have more than 10 categories per request.", "categories", "categories")
            )
        else:
            for i, category in enumerate(categories):
                if not isinstance(category, str):
                    errors.append(
                        _error(
                            f"Invalid type. Expected: string, given: {_json_type(category)}.",
                            f"categories.{i}",
                            "categories",
                        )
                    )
                elif len(category) > 255:
                    errors.append(
                        _error(
                            "A category cannot have more than 255 characters.",
                            f"categories.{i}",
                            "categories",
                        )
                    )
    custom_args = mail.get("custom_args")
    if custom_args is not None:
        if not isinstance(custom_args, dict):
            errors.append(
                _error(
                    f"Invalid type. Expected: object, given: {_json_type(custom_args)}.",
                    "custom_args",
                    "custom_args",
                )
            )
        else:
            for name, value in custom_args.items():
                if not isinstance(value, str):
                    errors.append(
                        _error(
                            f"Invalid type. Expected: string, given: {_json_type(value)}.",
                            f"custom_args.{name}",
                            "custom_args",
                        )
                    )
    return errors


def validate(mail: Any) -> list[Error]:
    """SendGrid's 400 errors for a mail/send body (the documented checks a client can trip), or []."""
    if not isinstance(mail, dict):
        return [{"message": "Bad Request", "field": None, "help": None}]
    errors = _personalization_errors(mail.get("personalizations"))
    if "from" not in mail:
        errors.append(
            _error(
                "The from object must be provided for every email send. It is an object that requires the "
                "email parameter, but may also contain a name parameter.",
                "from",
                "from",
            )
        )
    else:
        errors += _address_errors(mail["from"], "from", "from", "from")
    if "reply_to" in mail:
        errors += _address_errors(mail["reply_to"], "reply_to", "reply_to", "reply_to")
    personalizations = mail.get("personalizations") or []
    each_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and isinstance(p.get("subject"), str) and p["subject"] for p in personalizations
    )
    subject = mail.get("subject")
    if not (isinstance(subject, str) and subject) and not each_has_subject and not mail.get("template_id"):
        errors.append(
            _error(
                "The subject is required. You can get around this requirement if you use a template with a "
                "subject defined or if every personalization has a subject defined.",
                "subject",
                "subject",
            )
        )
    return errors + _content_errors(mail) + _extras_errors(mail)


def delivery_id(mail: Any) -> str | None:
    """Our delivery id, carried in custom_args (top level, or the first personalization's)."""
    if not isinstance(mail, dict):
        return None
    for args in (mail.get("custom_args"), _first(mail.get("personalizations"), "custom_args")):
        if isinstance(args, dict) and isinstance(args.get("delivery_id"), str):
            return str(args["delivery_id"])
    return None


def _first(items: Any, key: str) -> Any:
    return items[0].get(key) if isinstance(items, list) and items and isinstance(items[0], dict) else None


def message_id() -> str:
    """A random X-Message-Id shaped like SendGrid's (22 URL-safe characters)."""
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")


# -- what the server has seen ---------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One mail/send request as it arrived: epoch seconds, the status answered, our delivery id if any."""

    at: float
    status: int
    delivery_id: str | None


@dataclass(frozen=True)
class Accepted:
    """One message answered 202."""

    at: float
    delivery_id: str | None
    message_id: str


@dataclass(frozen=True)
class Counts:
    """Totals: `duplicates` counts acceptances beyond the first for the same delivery id."""

    requests: int
    accepted: int
    delivery_ids: int
    duplicates: int


SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,           -- arrival, epoch seconds
    status INTEGER NOT NULL,    -- the status answered
    delivery_id TEXT,           -- custom_args.delivery_id, when the body had one
    message_id TEXT             -- the X-Message-Id of an accepted (202) message, else NULL
);
"""


class Ledger:
    """Reads what a server recorded in its SQLite file, from any process, while it runs or after."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _query(self, sql: str) -> list[Any]:
        if not self.path.exists():
            raise FileNotFoundError(
                f"{self.path}: no SendGrid test server has recorded here (start one with --db)"
            )
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def counts(self) -> Counts:
        """How many requests, acceptances, distinct delivery ids and duplicate acceptances."""
        ((requests, accepted, distinct),) = self._query(
            "SELECT COUNT(*), COUNT(message_id), COUNT(DISTINCT COALESCE(delivery_id, message_id)) "
            "FILTER (WHERE message_id IS NOT NULL) FROM requests"
        )
        return Counts(requests, accepted, distinct, accepted - distinct)

    def requests(self) -> list[Request]:
        """Every request, in arrival order."""
        return [
            Request(*row) for row in self._query("SELECT at, status, delivery_id FROM requests ORDER BY seq")
        ]

    def accepted(self) -> list[Accepted]:
        """Every accepted message, in arrival order."""
        rows = self._query(
            "SELECT at, delivery_id, message_id FROM requests WHERE message_id IS NOT NULL ORDER BY seq"
        )
        return [Accepted(*row) for row in rows]

    def duplicates(self) -> dict[str, int]:
        """Delivery ids accepted more than once, with how often."""
        rows = self._query(
            "SELECT delivery_id, COUNT(*) FROM requests WHERE message_id IS NOT NULL AND delivery_id IS NOT NULL "
            "GROUP BY delivery_id HAVING COUNT(*) > 1"
        )
        return {str(d): int(n) for d, n in rows}


INSERT = "INSERT INTO requests (at, status, delivery_id, message_id) VALUES (?, ?, ?, ?)"


class _Recorder:
    """The server's side of the ledger: one committed row per request, written before the answer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # survives a killed process, which is what we test
        self.conn.executescript(SCHEMA)

    def record(self, at: float, status: int, delivery: str | None, accepted_as: str | None) -> None:
        self.conn.execute(INSERT, (at, status, delivery, accepted_as))  # autocommit: one transaction

    def forget(self) -> None:
        self.conn.execute("DELETE FROM requests")

    def close(self) -> None:
        self.conn.close()


# -- scripted faults ------------------------------------------------------------------------------


@dataclass
class Fault:
    """The next `count` requests get `status` (429, 5xx, or 202 for a slow success) after `delay` seconds."""

    status: int
    count: int = 1
    delay: float = 0.0
    reset_at: int | None = None  # X-RateLimit-Reset, epoch seconds (429)
    retry_after: int | None = None  # Retry-After seconds (429), only when asked for
    until_reset: bool = False  # instead of `count`: every request before `reset_at`
    every: int = 0  # instead of `count`: every `every`-th request from now on, until cleared (429)
    window: float = 1.0  # with `every`: X-RateLimit-Reset is the end of this request's window of `window` s
    seen: int = 0  # with `every`: requests counted so far


class _Script:
    """Faults waiting for the next requests, first in first out; set from any thread."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, now: float) -> Fault | None:
        if not self._queue:
            return None
        with self._lock:
            while self._queue:
                fault = self._queue[0]
                if fault.every:
                    fault.seen += 1
                    return fault if fault.seen % fault.every == 0 else None
                if fault.until_reset:
                    if now < (fault.reset_at or 0):
                        return fault
                    self._queue.popleft()
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._queue.popleft()
                return fault
            return None


# -- the ASGI app ---------------------------------------------------------------------------------


def _body(errors: list[Error]) -> bytes:
    return json.dumps({"errors": errors}).encode()


UNAUTHORIZED_MISSING = _body([{"field": None, "message": "authorization required", "help": None}])
UNAUTHORIZED_BAD = _body(
    [
        {
            "field": None,
            "message": "The provided authorization grant is invalid, expired, or revoked",
            "help": None,
        }
    ]
)
TOO_MANY = _body([{"field": None, "message": "too many requests"}])
SERVER_ERRORS = {
    500: _body([{"field": None, "message": "internal error", "help": None}]),
    502: _body([{"field": None, "message": "bad gateway", "help": None}]),
    503: _body([{"field": None, "message": "service unavailable", "help": None}]),
}
NOT_FOUND = _body([{"field": None, "message": "resource not found", "help": None}])
NOT_ALLOWED = _body([{"field": None, "message": "method not allowed", "help": None}])
JSON = (b"content-type", b"application/json")
CLIENT_CLOSED = 499


class SendgridApp:
    """The raw ASGI app (no framework: it has to answer thousands of requests a second)."""

    def __init__(
        self,
        recorder: _Recorder,
        keys: Iterable[str],
        script: _Script,
        *,
        keep: int = 1000,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.recorder = recorder
        self.authorizations = {f"Bearer {k}".encode() for k in keys}
        self.script = script
        self.received: deque[dict[str, Any]] = deque(maxlen=keep)
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read(receive)
        path, method = scope["path"], scope["method"]
        if body is None:  # half a request: nobody to answer; nginx logs this as 499
            if path == "/v3/mail/send":
                self.recorder.record(self.now(), CLIENT_CLOSED, None, None)
        elif path == "/v3/mail/send":
            if method != "POST":
                await _respond(send, 405, NOT_ALLOWED, [JSON])
            else:
                await self.mail_send(scope, body, send)
        elif path.startswith("/__control/"):
            await self.control(path[len("/__control/") :], method, body, send)
        else:
            await _respond(send, 404, NOT_FOUND, [JSON])

    async def mail_send(self, scope: Scope, body: bytes, send: Send) -> None:
        """Answer one mail/send as SendGrid would, or as the next scripted fault says."""
        at = self.now()
        authorization = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-type":
                content_type = value
        try:
            mail = json.loads(body) if body else None
        except ValueError:
            mail = None
        delivery = delivery_id(mail)
        fault: Fault | None = None
        accepted_as: str | None = None
        headers = [JSON]
        if authorization is None:
            status, answer = 401, UNAUTHORIZED_MISSING
        elif authorization not in self.authorizations:
            status, answer = 401, UNAUTHORIZED_BAD
        elif len(body) > MAX_BODY:
            status, answer = 413, _body([{"field": None, "message": "Payload Too Large", "help": None}])
        elif (fault := self.script.take(at)) is not None and fault.status != 202:
            status = fault.status
            answer = SERVER_ERRORS.get(status, TOO_MANY if status == 429 else _body([]))
            if status == 429:
                headers = [JSON, *self._rate_headers(fault, at)]
        elif content_type is not None and not content_type.startswith(b"application/json"):
            status = 415
            answer = _body(
                [{"field": None, "message": "Content-Type should be application/json.", "help": None}]
            )
        elif errors := validate(mail):
            status, answer = 400, _body(errors)
        else:
            status, answer = 202, b""
            accepted_as = message_id()
            headers = [(b"x-message-id", accepted_as.encode())]
            self.received.append(cast(dict[str, Any], mail))  # validate() found an object
        self.recorder.record(at, status, delivery, accepted_as)
        if fault is not None and fault.delay > 0:
            await asyncio.sleep(fault.delay)  # accepted (or refused) already; only the answer is late
        await _respond(send, status, answer, headers)

    def _rate_headers(self, fault: Fault, at: float) -> list[tuple[bytes, bytes]]:
        if fault.every:  # a limit per window: it resets when this request's window ends
            reset = math.ceil((math.floor(at / fault.window) + 1) * fault.window)
        else:
            reset = fault.reset_at if fault.reset_at is not None else int(at) + 60
        headers = [
            (b"x-ratelimit-limit", b"600"),
            (b"x-ratelimit-remaining", b"0"),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if fault.retry_after is not None:
            headers.append((b"retry-after", str(fault.retry_after).encode()))
        return headers

    def reset(self) -> None:
        """Forget scripted faults, recent payloads and every ledger row."""
        self.script.clear()
        self.received.clear()
        self.recorder.forget()

    async def control(self, what: str, method: str, body: bytes, send: Send) -> None:
        """The test process's remote control: faults, counts, recent payloads."""
        if what == "health":
            await _respond(send, 200, b'{"ok":true}', [JSON])
        elif what == "faults" and method == "POST":
            self.script.add(Fault(**json.loads(body)))
            await _respond(send, 204, b"", [])
        elif what == "faults" and method == "DELETE":
            self.script.clear()
            await _respond(send, 204, b"", [])
        elif what == "reset" and method == "POST":
            self.reset()
            await _respond(send, 204, b"", [])
        elif what == "stats":
            await _respond(
                send, 200, json.dumps(asdict(Ledger(self.recorder.path).counts())).encode(), [JSON]
            )
        elif what == "received":
            await _respond(send, 200, json.dumps(list(self.received)).encode(), [JSON])
        else:
            await _respond(send, 404, NOT_FOUND, [JSON])


async def _read(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away before sending all of it."""
    message = await receive()
    chunks = [message.get("body", b"")]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return None if message["type"] == "http.disconnect" else b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- running it -----------------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    # proto must say TCP: asyncio turns Nagle off (TCP_NODELAY) only for sockets that do, and with Nagle on
    # a response written as headers then body waits ~40 ms for the client's delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _uvicorn(app: SendgridApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http="auto",  # httptools when installed (several times faster), else h11
        loop="auto",  # uvloop when installed
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_keep_alive=30,
        backlog=1024,
    )
    return uvicorn.Server(config)


class _Controls:
    """Fault scripting shared by the thread and the process server."""

    url: str
    api_key: str
    ledger: Ledger

    def _add(self, fault: Fault) -> None:
        raise NotImplementedError

    def clear_faults(self) -> None:
        """Drop every scripted fault not yet used."""
        raise NotImplementedError

    def received(self) -> list[dict[str, Any]]:
        """The most recent accepted payloads, oldest first, as the server parsed them."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget scripted faults, recent payloads and the ledger (between tests sharing one server)."""
        raise NotImplementedError

    def fail_next(self, count: int = 1, status: int = 500, *, delay: float = 0.0) -> None:
        """Answer the next `count` requests with a server error (500, 502 or 503), accepting nothing."""
        self._add(Fault(status, count, delay))

    def rate_limit_next(
        self,
        count: int = 1,
        *,
        reset_at: int | None = None,
        reset_after: float = 2.0,
        retry_after: int | None = None,
    ) -> int:
        """Answer the next `count` requests 429 with X-RateLimit-Reset (epoch seconds, returned)."""
        reset = reset_at if reset_at is not None else int(time.time() + reset_after) + 1
        self._add(Fault(429, count, reset_at=reset, retry_after=retry_after))
        return reset

    def rate_limit_until(self, *, reset_at: int | None = None, reset_after: float = 2.0) -> int:
        """Answer every request 429 until X-RateLimit-Reset (returned) passes, as SendGrid does once a key's
        limit is spent: a client that does not wait shows up in the ledger as more 429s."""
        reset = reset_at if reset_at is not None else int(time.time() + reset_after) + 1
        self._add(Fault(429, 0, reset_at=reset, until_reset=True))
        return reset

    def rate_limit_every(self, every: int, *, window: float = 1.0) -> None:
        """From now until `clear_faults`, answer every `every`-th request 429, as a key allowed `every - 1`
        requests per `window` seconds would be: X-RateLimit-Reset is the epoch second its window ends."""
        self._add(Fault(429, 0, every=every, window=window))

    def slow_next(self, count: int = 1, *, delay: float = 2.0) -> None:
        """Accept the next `count` valid messages at once but answer each only after `delay` seconds."""
        self._add(Fault(202, count, delay))


class SendgridServer(_Controls):
    """The server in a background thread of this process; a context manager."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        db: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        keep: int = 1000,
    ) -> None:
        self.api_key = api_key
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sendgrid-server-")
            db = Path(self._tmp.name) / "sendgrid.db"
        path = Path(db)
        self.ledger = Ledger(path)
        self._recorder = _Recorder(path)
        self._script = _Script()
        self.app = SendgridApp(self._recorder, [api_key], self._script, keep=keep)
        self._socket = _listen(host, port)
        self.url = f"http://{host}:{self._socket.getsockname()[1]}"
        self._server = _uvicorn(self.app)
        self._thread: threading.Thread | None = None

    def start(self) -> SendgridServer:
        """Serve in a daemon thread; return once it accepts connections."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="sendgrid-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the SendGrid test server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving (in-flight slow answers are dropped), close the ledger, remove a temporary file."""
        if self._thread is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            self._thread.join(timeout=10)
            self._thread = None
        self._socket.close()
        self._recorder.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> SendgridServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _add(self, fault: Fault) -> None:
        self._script.add(fault)

    def clear_faults(self) -> None:
        self._script.clear()

    def received(self) -> list[dict[str, Any]]:
        return list(self.app.received)

    def reset(self) -> None:
        self.app.reset()


def end_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM a child process, then SIGKILL it if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class SendgridProcess(_Controls):
    """The server as a separate process recording into `db`; a context manager."""

    def __init__(
        self, db: str | Path, *, api_key: str = DEFAULT_KEY, port: int = 0, keep: int = 1000
    ) -> None:
        self.api_key = api_key
        self.ledger = Ledger(db)
        self.url = ""
        self._args = [
            sys.executable,
            "-m",
            "engagement.testing.sendgrid_server",
            *("--db", str(db), "--port", str(port), "--key", api_key, "--keep", str(keep)),
        ]
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> SendgridProcess:
        """Start the process; return once it prints the address it listens on."""
        self._process = subprocess.Popen(self._args, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the SendGrid test server did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        return self

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s); its ledger file stays readable."""
        if self._process is None:
            return
        end_process(self._process)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    def __enter__(self) -> SendgridProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _control(self, method: str, what: str, body: dict[str, Any] | None = None) -> httpx.Response:
        response = httpx.request(method, f"{self.url}/__control/{what}", json=body, timeout=10)
        response.raise_for_status()
        return response

    def _add(self, fault: Fault) -> None:
        self._control("POST", "faults", asdict(fault))

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def received(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._control("GET", "received").json()
        return found

    def reset(self) -> None:
        self._control("POST", "reset")


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C, recording into --db."""
    parser = argparse.ArgumentParser(
        prog="python -m engagement.testing.sendgrid_server",
        description="A SendGrid-compatible v3 mail/send server that records every request into an SQLite "
        "ledger; prints 'listening on URL' when ready, stops on SIGTERM.",
    )
    parser.add_argument(
        "--db", required=True, help="SQLite file recording every request and accepted message"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument(
        "--key", action="append", help=f"accepted API key (repeatable; default {DEFAULT_KEY})"
    )
    parser.add_argument("--keep", type=int, default=1000, help="recent payloads kept for /__control/received")
    args = parser.parse_args(argv)
    path = Path(args.db)
    app = SendgridApp(_Recorder(path), args.key or [DEFAULT_KEY], _Script(), keep=args.keep)
    sock = _listen(args.host, args.port)
    server = _uvicorn(app)
    print(f"listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
