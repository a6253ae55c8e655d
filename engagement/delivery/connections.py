"""Pooled keep-alive HTTP/1.1 POSTs to one origin over the standard library's `http.client`.

The send path's transport: httpx spent about 550 µs of CPU on each request here and urllib3 about
130 µs; `http.client` takes about 70 µs. What matters for at-most-once is kept apart: a failure before
a byte left (`NotSent`: connecting, TLS, a proxy's CONNECT) from one after (`NoAnswer`: the request
went out, the answer did not come back, so the server may have acted on it).
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from engagement import errors

DEFAULT_PORTS = {"http": 80, "https": 443}
CORK: int | None = getattr(socket, "TCP_CORK", None)


class NotSent(errors.EngagementError):
    """Nothing of the request left this process: another try cannot double it."""

    def __init__(self, kind: str, detail: object) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class NoAnswer(errors.EngagementError):
    """The request left, whole or in part, and no complete answer came back."""

    def __init__(self, kind: str, detail: object) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class Invalid(errors.EngagementError):
    """The URL or a header can never make a valid request (our configuration's fault)."""


@dataclass(frozen=True)
class Answer:
    """A complete HTTP response, with httpx's names for the parts the providers read."""

    status_code: int
    reason_phrase: str
    headers: Message  # case-insensitive `.get`
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)


class Transport(Protocol):
    """POSTs a body to a path of one origin and returns the whole answer."""

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer: ...

    def close(self) -> None: ...


class Connections:
    """Up to `size` idle keep-alive connections to the origin of `url`, reused last in, first out.

    Safe to share between threads: each request has a connection to itself. `timeout` bounds connecting
    and every read and write, as httpx's does. HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured.
    """

    def __init__(self, url: str, *, timeout: float, size: int = 20) -> None:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise Invalid(f"{url!r}: only http:// and https:// URLs are supported")
        if not parts.hostname:
            raise Invalid(f"{url!r}: no host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise Invalid(f"{url!r}: {exc}") from exc
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, port
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.size = size
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.proxy = _proxy(parts.scheme, parts.netloc)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST `body`; raise NotSent, NoAnswer or Invalid when there is no complete answer."""
        conn = self._take()
        target = path if self.proxy is None or self.scheme == "https" else self.origin + path
        try:
            if conn.sock is None:
                self._connect(conn)
            try:
                conn.putrequest("POST", target, skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                if self.proxy is not None and self.scheme == "http" and self.proxy[2]:
                    conn.putheader("Proxy-Authorization", self.proxy[2])
                conn.putheader("Content-Length", str(len(body)))
            except ValueError as exc:  # a header http.client refuses (say, a newline in the API key)
                raise Invalid(str(exc)) from exc
            try:
                _cork(conn, True)  # http.client writes the head and the body apart: leave as one
                conn.endheaders(body)
                _cork(conn, False)
            except TimeoutError as exc:
                raise NoAnswer("WriteTimeout", exc) from exc
            except OSError as exc:
                raise NoAnswer("WriteError", exc) from exc
            try:
                response = conn.getresponse()
                content = response.read()
            except TimeoutError as exc:
                raise NoAnswer("ReadTimeout", exc) from exc
            except http.client.HTTPException as exc:
                raise NoAnswer("RemoteProtocolError", f"{type(exc).__name__}: {exc}") from exc
            except OSError as exc:
                raise NoAnswer("ReadError", exc) from exc
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return Answer(response.status, response.reason, response.msg, content)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if _alive(conn):
                    return conn
                conn.close()
        host, port = self.proxy[:2] if self.proxy else (self.host, self.port)
        if self.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self.tls)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self, conn: http.client.HTTPConnection) -> None:
        if self.proxy is not None and self.scheme == "https":
            _, _, authorization = self.proxy
            conn.set_tunnel(
                self.host, self.port, {"Proxy-Authorization": authorization} if authorization else None
            )
        try:
            conn.connect()
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError as exc:
            raise NotSent("ConnectTimeout", exc) from exc
        except (OSError, http.client.HTTPException) as exc:  # refused, unreachable, TLS, the proxy's CONNECT
            raise NotSent("ConnectError", exc) from exc


def _cork(conn: http.client.HTTPConnection, on: bool) -> None:
    """Hold (or release) partial writes, so the server is woken once per request, not per write (Linux)."""
    if CORK is not None and conn.sock is not None:
        conn.sock.setsockopt(socket.IPPROTO_TCP, CORK, int(on))


def _alive(conn: http.client.HTTPConnection) -> bool:
    """An idle connection the server has not closed: readable while idle means EOF (or junk)."""
    if conn.sock is None:
        return False
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _proxy(scheme: str, netloc: str) -> tuple[str, int, str | None] | None:
    """The proxy the environment names for this origin: host, port, Proxy-Authorization value."""
    if urllib.request.proxy_bypass(netloc):
        return None
    url = urllib.request.getproxies_environment().get(scheme)
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise Invalid(f"proxy {url!r} from the environment: only http://host:port proxies are supported")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return parts.hostname, parts.port or DEFAULT_PORTS["http"], authorization
