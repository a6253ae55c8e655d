"""The SendGrid transport's edges, against raw sockets on 127.0.0.1: a request that left and got no answer is
in doubt (never retried), a keep-alive connection the server closed while idle is replaced without doubt,
and a URL no request can go to fails permanently without a request."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from messages import outbound

from engagement import config
from engagement.delivery import connections
from engagement.delivery.message import InDoubt, SendError
from engagement.delivery.sendgrid import SendgridEmail

RETRY = config.Retry(attempts=3, base_seconds=0.0, max_seconds=0.0)
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nX-Message-Id: %s\r\nContent-Length: 0\r\n\r\n"


class RawServer:
    """Accepts connections on 127.0.0.1 and hands each to `serve(conn, number)` in its own thread."""

    def __init__(self, serve: Callable[[socket.socket, int], None]) -> None:
        self.serve = serve
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn, self.connections), daemon=True).start()

    def read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append(head)
        return head

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def raw() -> Iterator[Callable[[Callable[[RawServer, socket.socket, int], None]], RawServer]]:
    servers: list[RawServer] = []

    def make(serve: Callable[[RawServer, socket.socket, int], None]) -> RawServer:
        holder: dict[str, RawServer] = {}
        server = RawServer(lambda conn, n: serve(holder["server"], conn, n))
        holder["server"] = server
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def provider(url: str, **kwargs: Any) -> SendgridEmail:
    return SendgridEmail("SG.key", url, timeout=1.0, retry=RETRY, sleep=lambda _: None, **kwargs)


def test_a_connection_closed_after_the_request_arrived_is_in_doubt_and_not_retried(raw: Any) -> None:
    def hang_up(server: RawServer, conn: socket.socket, _: int) -> None:
        server.read_request(conn)
        conn.close()

    server = raw(hang_up)
    sendgrid = provider(server.url)

    with pytest.raises(InDoubt) as doubt:
        sendgrid.send(outbound())

    assert "no answer after the request was sent" in doubt.value.reason
    assert "RemoteProtocolError" in doubt.value.reason
    assert len(server.requests) == 1  # never sent again: the server may have kept it
    sendgrid.close()


def test_an_idle_connection_the_server_closed_is_replaced_and_the_next_message_is_not_in_doubt(
    raw: Any,
) -> None:
    def one_answer_then_close(server: RawServer, conn: socket.socket, number: int) -> None:
        server.read_request(conn)
        conn.sendall(ACCEPTED % f"id-{number}".encode())
        conn.close()  # the server's keep-alive timeout, before the client's next request

    server = raw(one_answer_then_close)
    sendgrid = provider(server.url)

    first = sendgrid.send(outbound(delivery_id="first"))
    threading.Event().wait(0.2)  # let the close arrive
    second = sendgrid.send(outbound(delivery_id="second"))

    assert (first, second) == ("id-1", "id-2")
    assert server.connections == 2 and len(server.requests) == 2
    sendgrid.close()


def test_requests_reuse_one_keep_alive_connection_and_carry_the_documented_head(raw: Any) -> None:
    def keep_alive(server: RawServer, conn: socket.socket, _: int) -> None:
        while True:
            try:
                server.read_request(conn)
            except (OSError, StopIteration):
                return
            conn.sendall(ACCEPTED % f"id-{len(server.requests)}".encode())

    server = raw(keep_alive)
    sendgrid = provider(server.url)

    ids = [sendgrid.send(outbound(delivery_id=f"d{i}")) for i in range(5)]

    assert ids == [f"id-{i}" for i in range(1, 6)]
    assert server.connections == 1
    head = server.requests[0].decode().split("\r\n")
    assert head[0] == "POST /v3/mail/send HTTP/1.1"
    assert "Authorization: Bearer SG.key" in head and "Content-Type: application/json" in head
    sendgrid.close()


@pytest.mark.parametrize("url", ["ftp://api.sendgrid.com", "https://", "http://host:port"])
def test_a_url_no_request_can_go_to_fails_permanently(url: str) -> None:
    sendgrid = provider(url)

    with pytest.raises(SendError) as refused:
        sendgrid.send(outbound())

    assert refused.value.permanent and not isinstance(refused.value, InDoubt)
    assert "SendGrid request invalid" in refused.value.reason


def test_an_api_key_with_a_line_break_fails_permanently_before_anything_is_sent(raw: Any) -> None:
    server = raw(lambda server, conn, _: server.read_request(conn))
    sendgrid = SendgridEmail(
        "SG.key\r\nX-Evil: 1", server.url, timeout=1.0, retry=RETRY, sleep=lambda _: None
    )

    with pytest.raises(SendError) as refused:
        sendgrid.send(outbound())

    assert refused.value.permanent and not isinstance(refused.value, InDoubt)
    assert server.requests == []
    sendgrid.close()


def test_the_environments_proxy_is_used_and_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://user:secret@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")

    through = connections.Connections("http://api.sendgrid.com", timeout=1)
    direct = connections.Connections("http://localhost:8080", timeout=1)

    assert through.proxy == ("proxy.internal", 3128, "Basic dXNlcjpzZWNyZXQ=")
    assert direct.proxy is None


def test_a_proxy_it_cannot_speak_to_fails_every_send_permanently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.internal:1080")

    with pytest.raises(SendError) as refused:
        provider("https://api.sendgrid.com").send(outbound())

    assert refused.value.permanent and "only http://host:port proxies" in refused.value.reason
