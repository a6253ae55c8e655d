"""A real HTTP endpoint on 127.0.0.1 that plays a webhook receiver (a CSM tool, Slack) for the notify tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Endpoint:
    """Records each POST as (path, headers, body); answers the scripted (status, headers) in turn, then 200."""

    def __init__(self, path: str) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append((self.path, dict(self.headers), body))
                status, headers = endpoint.answers.pop(0) if endpoint.answers else (200, {})
                text = b"rate_limited" if status == 429 else b"ok"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        return [body for _, _, body in self.requests]


@contextmanager
def serving(path: str) -> Iterator[Endpoint]:
    """An endpoint for `path`, served in a thread until the block ends."""
    endpoint = Endpoint(path)
    thread = threading.Thread(
        target=endpoint.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()
        thread.join()
