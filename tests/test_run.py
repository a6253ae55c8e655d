"""`engagement run` as a service: one worker per SQLite database, and a 3-hour outage caught up without a flood.

Both tests run the real command in child processes against a SendGrid-compatible server process. The
outage test gives the engine a clock set ahead of the wall clock (the hidden `--sim-start` option): the
first run sends what is due, is SIGKILLed, and the next run starts three simulated hours later.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from processes import Engagement, free_port
from sqlalchemy import select, update

from engagement import config
from engagement.clock import SystemClock
from engagement.store import migrate, schema
from engagement.store.database import Database
from engagement.testing import welcome_world
from engagement.testing.sendgrid_server import SendgridProcess

d = schema.deliveries
MAX_LATENESS = timedelta(hours=2)
OUTAGE = timedelta(hours=3)
SPACING = timedelta(seconds=36)  # 600 deliveries due over six hours
TICK = re.compile(r"tick now=(\S+) .*?sent=(\d+) .*?skipped_late=(\d+)")


@dataclass
class Service:
    """A SendGrid server process, a welcome-world config pointing at it, and its migrated SQLite database."""

    server: SendgridProcess
    config_path: Path
    db: Database

    def run(self, log: Path, *args: str) -> Engagement:
        return Engagement(self.config_path, log, "run", "--port", str(free_port()), *args)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with SendgridProcess(tmp_path / "sendgrid.db") as server:
        path = welcome_world.write(
            tmp_path, api_url=server.url, api_key=server.api_key, in_flight=50, tick_seconds=1, lease="1s"
        )
        path.write_text(path.read_text().replace("[scheduler]\n", '[scheduler]\nmax_lateness = "2h"\n'))
        db = Database(config.load(path).database_url)
        migrate.upgrade(db)
        yield Service(server, path, db)
        db.dispose()


def test_a_second_worker_on_one_sqlite_database_is_refused_until_the_first_is_gone(
    service: Service, tmp_path: Path
) -> None:
    first = service.run(tmp_path / "first.log")
    try:
        first.wait_started()
        second = Engagement(service.config_path, tmp_path / "second.log", "worker")
        assert second.process.wait(timeout=60) == 1
        message = second.text()
        assert "another engagement worker (pid" in message and "SQLite allows one worker at a time" in message
        assert "PostgreSQL" in message and "worker started" not in message
        first.kill()  # even SIGKILL releases the lock: the kernel drops it with the process
        third = Engagement(service.config_path, tmp_path / "third.log", "worker")
        third.wait_started()
        assert third.stop() == 0
    finally:
        first.ensure_dead()


SYS_TGKILL = {"x86_64": 234, "aarch64": 131}


def signal_a_thread_other_than_main(pid: int, signum: int) -> None:
    """Deliver `signum` to one of the process's other threads, as the kernel may choose to (tgkill)."""
    number = SYS_TGKILL.get(os.uname().machine)
    if number is None:
        pytest.skip(f"no tgkill number known for {os.uname().machine}")
    threads = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    assert threads, "the worker runs its scheduler in threads"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(number, pid, threads[0], signum) == 0, os.strerror(ctypes.get_errno())


def test_sigterm_delivered_to_a_scheduler_thread_still_stops_the_worker(
    service: Service, tmp_path: Path
) -> None:
    worker = Engagement(service.config_path, tmp_path / "worker.log", "worker")
    try:
        worker.wait_started()
        worker.wait_for("tick now=")  # the scheduler's threads are running

        signal_a_thread_other_than_main(worker.process.pid, signal.SIGTERM)

        assert worker.process.wait(timeout=30) == 0
        assert "signal SIGTERM: finishing the current batch" in worker.text()
        assert "worker stopped" in worker.text()
    finally:
        worker.ensure_dead()


def statuses_by_due(db: Database) -> dict[str, tuple[str, datetime]]:
    with db.begin() as conn:
        return {r.id: (r.status, r.due_at) for r in conn.execute(select(d.c.id, d.c.status, d.c.due_at))}


def test_after_a_three_hour_outage_each_timely_message_goes_once_and_the_stale_ones_are_skipped_late(
    service: Service, tmp_path: Path
) -> None:
    settings = config.load(service.config_path)
    welcome_world.queue(settings, service.db, 600, per_account=10)
    start = SystemClock().now().replace(microsecond=0)
    with service.db.begin() as conn:  # spread the 600 over six hours from `start`
        ids = list(conn.execute(select(d.c.id).order_by(d.c.id)).scalars())
        for i, delivery in enumerate(ids):
            conn.execute(update(d).where(d.c.id == delivery).values(due_at=start + i * SPACING))
    ledger = service.server.ledger

    # An hour in: everything due so far goes out (none of it is late by more than max_lateness).
    before = service.run(tmp_path / "before.log", "--sim-start", (start + timedelta(hours=1)).isoformat())
    try:
        before.wait_for("sent=")
        deadline = time.monotonic() + 60
        while not any(int(m[1]) for m in TICK.findall(before.text())):
            assert time.monotonic() < deadline, before.text()
            time.sleep(0.05)
        before.kill()
    finally:
        before.ensure_dead()
    at_kill = statuses_by_due(service.db)
    sent_before = {i for i, (status, _) in at_kill.items() if status == "sent"}
    assert 95 <= len(sent_before) <= 110, len(sent_before)
    assert all(
        due <= start + timedelta(hours=1, minutes=1) for i, (_, due) in at_kill.items() if i in sent_before
    )
    assert ledger.counts().accepted == len(sent_before)

    # Down for three hours, then restarted.
    restarted_at = start + timedelta(hours=1) + OUTAGE
    after = service.run(tmp_path / "after.log", "--sim-start", restarted_at.isoformat())
    try:
        after.wait_for("sent=")
        first_tick = TICK.search(after.text())
        assert first_tick is not None
        time.sleep(1.0)
        assert after.stop() == 0
    finally:
        after.ensure_dead()
    tick_now = datetime.fromisoformat(first_tick[1])
    final = statuses_by_due(service.db)
    ticks = TICK.findall(after.text())
    last_now = datetime.fromisoformat(ticks[-1][0])
    for delivery, (status, due) in final.items():
        if delivery in sent_before:
            assert status == "sent"
        elif due < tick_now - MAX_LATENESS:
            assert status == "skipped_late", (due, status)
        elif due <= tick_now:
            assert status == "sent", (due, status)
        elif due > last_now:
            assert status == "queued", (due, status)
    skipped = [i for i, (status, _) in final.items() if status == "skipped_late"]
    sent_after = [i for i, (status, _) in final.items() if status == "sent" and i not in sent_before]
    assert int(first_tick[3]) == len(skipped) >= 95  # the stale hour before the outage's last two
    assert 195 <= int(first_tick[2]) <= len(sent_after) <= 215  # two hours' worth, once each, no flood
    counts = ledger.counts()
    assert counts.duplicates == 0 and counts.accepted == len(sent_before) + len(sent_after)
    accepted = {a.delivery_id for a in ledger.accepted()}
    assert accepted == sent_before | set(sent_after)


def test_run_exits_with_a_clear_error_when_its_port_is_taken(service: Service, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = Engagement(service.config_path, tmp_path / "run.log", "run", "--port", str(port))
        assert run.process.wait(timeout=60) == 1
    assert (
        "The HTTP API did not start (is the port taken?)" in run.text() and "worker started" not in run.text()
    )
