"""`engagement serve` as a process of its own on 127.0.0.1, and a client to load it: the benchmarks' harness."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from engagement.store import schema
from engagement.store.database import Database
from engagement.testing.sendgrid_server import end_process

ENGAGEMENT = Path(sys.executable).parent / "engagement"  # the installed console script


def empty(db: Database) -> None:
    """Drop every engagement table (and Alembic's version table) from a scratch database."""
    schema.metadata.drop_all(db.engine)
    with db.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ApiProcess:
    """`engagement --config CONFIG serve` in a child process; a context manager that waits for /healthz."""

    def __init__(self, config_path: Path, *, host: str = "127.0.0.1", log: Path | None = None) -> None:
        self.config_path = config_path
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.log = log or config_path.with_name("serve.log")
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ApiProcess:
        command = [str(ENGAGEMENT), "--config", str(self.config_path), "serve", "--host", self.host]
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(
                [*command, "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"engagement serve exited with {self._process.returncode}: see {self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"engagement serve did not answer /healthz in 30 s: see {self.log}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far, its worker processes included (Linux /proc)."""
        assert self._process is not None, "not started"
        return sum(_cpu_ticks(pid) for pid in _tree(self._process.pid)) / os.sysconf("SC_CLK_TCK")

    def idle_cpu_seconds(self, quiet: float = 1.5, limit: float = 60) -> float:
        """`cpu_seconds` once the server has used no CPU for `quiet` seconds (longer than the scorer's settling wait)."""
        deadline = time.monotonic() + limit
        used = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.cpu_seconds()
            if now == used:
                break
            used = now
        return used

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            end_process(self._process)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, as long as they run."""
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                waiting.extend(int(child) for child in task.read_text().split())
            except OSError:  # the thread ended meanwhile
                continue
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def post_all(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int = 1
) -> list[dict[str, Any]]:
    """POST each (body, headers) to `url` over `concurrency` keep-alive connections; fail on any non-200."""

    def post(client: httpx.Client, request: tuple[bytes, dict[str, str]]) -> dict[str, Any]:
        answer = client.post(url, content=request[0], headers=request[1])
        if answer.status_code != 200:
            raise RuntimeError(f"{answer.status_code}: {answer.text[:500]}")
        found: dict[str, Any] = answer.json()
        return found

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=60, limits=limits) as client:
        if concurrency == 1:
            return [post(client, request) for request in requests]
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(lambda request: post(client, request), requests))


@dataclass
class Timed:
    """One timed load: wall time, the client's and the server's CPU, and the machine's load."""

    seconds: float
    client_cpu: float
    server_cpu: float
    server_cpu_idle: float  # including the background work the requests left (scoring), once it is done
    load_before: float
    load_after: float

    def report(self, events: int, what: str) -> str:
        return (
            f"ingested {events:,} events in {self.seconds:.2f} s: {events / self.seconds:,.0f} events/s ({what})\n"
            f"server process CPU: {self.server_cpu:.2f} s during the run ({events / self.server_cpu:,.0f} events "
            f"per CPU second), {self.server_cpu_idle:.2f} s once idle (scoring included); "
            f"client CPU {self.client_cpu:.2f} s\n"
            f"load average (1 min) before/after: {self.load_before:.2f} / {self.load_after:.2f}"
        )


def timed_post_all(
    api: ApiProcess, path: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> tuple[list[dict[str, Any]], Timed]:
    """`post_all` with the figures the benchmarks report."""
    load_before = os.getloadavg()[0]
    server, client = api.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    answers = post_all(f"{api.url}{path}", requests, concurrency)
    seconds = time.perf_counter() - started
    client = time.process_time() - client
    during = api.cpu_seconds() - server
    idle = api.idle_cpu_seconds() - server
    return answers, Timed(seconds, client, during, idle, load_before, os.getloadavg()[0])


def bench_arguments(doc: str | None, *, batch: int, seed: int) -> argparse.Namespace:
    """The options the ingest benchmarks share."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--concurrency", type=int, default=2, help="connections posting at once")
    parser.add_argument(
        "--workers", type=int, default=2, help="`engagement serve` processes (server.workers)"
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--seed", type=int, default=seed)
    return parser.parse_args()
