"""Requests per second the local SendGrid-compatible server answers, from one client process over keep-alive.

Run: .venv/bin/python bench/sendgrid_server_rate.py [--requests 20000] [--connections 1,4] [--mode process|thread]

The server runs as its own process (default) or in a thread of this one; it validates each payload and
commits a ledger row to SQLite before answering 202. Two clients are timed, each over 1 and over several
keep-alive connections (one thread per connection): a lean http.client loop (close to the server's own
ceiling) and the SendGrid provider itself (pooled http.client connections, shared by the threads). In process mode
the server's CPU time per request is read from /proc.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from engagement import config
from engagement.delivery.message import OutboundEmail
from engagement.delivery.sendgrid import SendgridEmail, payload
from engagement.testing.sendgrid_server import SendgridProcess, SendgridServer

HTML = "<html><body>" + "<p>Hi Ada, here is what your team did this week.</p>" * 40 + "</body></html>"


def message(i: int) -> OutboundEmail:
    return OutboundEmail(
        delivery_id=f"bench-{i:08d}",
        to=f"user{i}@example.com",
        to_name="Ada Lovelace",
        sender="Chartwell <success@chartwell.example>",
        reply_to="Chartwell Customer Success <help@chartwell.example>",
        subject="Your weekly report is ready",
        html=HTML,
        text="Hi Ada,\n\nYour weekly report is ready.\n",
        headers={
            "List-Unsubscribe": "<https://engage.example.com/unsubscribe/abc.def>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        categories=("onboarding", "onboarding/welcome"),
        custom_args={"delivery_id": f"bench-{i:08d}", "journey_id": "onboarding", "step_id": "welcome"},
    )


def in_threads(jobs: list[Callable[[], None]]) -> float:
    threads = [threading.Thread(target=job) for job in jobs]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def http_client(url: str, key: str, ids: range, connections: int) -> float:
    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [json.dumps(payload(message(i))).encode() for i in ids]

    def run(share: list[bytes]) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        for body in share:
            conn.request("POST", "/v3/mail/send", body, headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 202, response.status
        conn.close()

    return len(bodies) / in_threads([lambda s=bodies[c::connections]: run(s) for c in range(connections)])


def provider(url: str, key: str, ids: range, connections: int) -> float:
    sendgrid = SendgridEmail(
        key, url, timeout=10, retry=config.Retry(attempts=1), max_connections=connections
    )
    messages = [message(i) for i in ids]

    def run(share: list[OutboundEmail]) -> None:
        for m in share:
            sendgrid.send(m)

    rate = len(messages) / in_threads([lambda s=messages[c::connections]: run(s) for c in range(connections)])
    sendgrid.close()
    return rate


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--connections", default="1,4")
    parser.add_argument("--mode", choices=["process", "thread"], default="process")
    args = parser.parse_args()
    n = args.requests
    print(f"server mode: {args.mode}; {n} requests per run; payload {len(json.dumps(payload(message(0))))} B")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sendgrid.db"
        server = SendgridProcess(db) if args.mode == "process" else SendgridServer(db=db)
        with server:
            pid = server.pid if isinstance(server, SendgridProcess) else None
            http_client(server.url, server.api_key, range(10**8, 10**8 + 500), 1)  # warm up
            offset = 0
            for name, client in (("http.client", http_client), ("SendgridEmail", provider)):
                for connections in (int(c) for c in args.connections.split(",")):
                    before = cpu_seconds(pid)
                    rate = client(server.url, server.api_key, range(offset, offset + n), connections)
                    offset += n
                    cpu = (cpu_seconds(pid) - before) / n * 1e6
                    per = f", server CPU {cpu:.0f} µs/request" if pid else ""
                    print(f"{name:22} {connections} connection(s): {rate:7,.0f} requests/s{per}")
            counts = server.ledger.counts()
    print(f"ledger: {counts}")


if __name__ == "__main__":
    main()
