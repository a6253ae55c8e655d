"""An ASGI app (the engine's API, or a test's host page) served by uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def listening(host: str = "127.0.0.1") -> tuple[socket.socket, str]:
    """A socket bound to a free port and its base URL: bind first, build the app knowing its URL, then serve."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    return sock, f"http://{host}:{sock.getsockname()[1]}"


@contextmanager
def serving(app: Any, sock: socket.socket) -> Iterator[None]:
    """Serve `app` on `sock` in a daemon thread until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        # lifespan is off, so the engine app's background scorer is stopped here: a credit pass left
        # running holds locks the next test's schema setup waits on (a deadlock on PostgreSQL)
        services = getattr(getattr(app, "state", None), "services", None)
        scorer = getattr(services, "scorer", None)
        if scorer is not None:
            scorer.stop()


@contextmanager
def served(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port; yield its base URL; stop it afterwards."""
    sock, url = listening(host)
    with serving(app, sock):
        yield url
