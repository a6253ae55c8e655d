"""The crash test: a worker sending 10,000 emails to a SendGrid-compatible server is SIGKILLed at a random
moment and restarted, 20 times. Nothing is accepted twice, nothing is lost, and each crash puts at most
`limits.in_flight` deliveries in doubt.

The set-up, all real: a migrated SQLite file with 10,000 contacts and one active journey whose only step
is an email (the shipped onboarding/welcome template). A tick in this process enrolls everyone and queues
the 10,000 emails while the email provider is paused (as after a 429), so the test starts from exactly
10,000 `queued` deliveries and sends nothing itself. Each run is `engagement --config CFG run` (the
scheduler and the HTTP API in one process, as in production), a process of its own with the real clock
and the real SendGrid provider; the server is a process too, so it survives every kill and its ledger
file counts what it accepted.

The server holds each answer `LATENCY` seconds after accepting the message (a stand-in for the network
round trip to SendGrid; the provider keeps `email.sendgrid.connections` = 8 requests in flight, so about
500 answers a second). Without it the 10,000 would be gone within the first few runs and most kills
would hit an idle worker; with it nearly every kill lands mid-batch, often between "accepted" and "answer
read": the case the ledger exists for. Each run is killed a seeded random 0.2-2.5 s after the worker
logged that it started (a kill during interpreter start-up would test nothing).

The lease is 1 s, so the next worker's first tick already finds the dead worker's `sending` rows older
than the lease and marks them `in_doubt`. A short lease is safe with one worker: the sweep runs at the
start of a tick's dispatch, when this worker has no batch in flight, and the previous worker is dead
(waited for) before the next one starts.

Figures go to stdout (run with -s) and to test-artifacts/crash.json. A second, shorter test checks the
other way a worker stops: SIGTERM finishes the batch in flight and leaves the rest queued.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import Engagement, free_port
from sqlalchemy import func, select
from typer.testing import CliRunner

from engagement import config
from engagement.cli import app
from engagement.delivery.recording import RecordingEmail
from engagement.store import migrate, schema
from engagement.store.database import Database
from engagement.testing import welcome_world
from engagement.testing.sendgrid_server import Ledger, SendgridProcess

REPO = Path(__file__).resolve().parents[1]
ARTIFACT = REPO / "test-artifacts" / "crash.json"
CONTACTS = 10_000
CRASHES = 20
IN_FLIGHT = 50
SEED = 20261122
RUN_SECONDS = (0.2, 2.5)
LATENCY = 0.016
FINISH_WITHIN = 240.0
UNCERTAIN = ("sending", "in_doubt")
d = schema.deliveries


@dataclass
class Crash:
    """What one killed run left behind."""

    run: int
    ran_seconds: float
    sent: int
    queued: int
    uncertain_added: int  # newly `sending` or `in_doubt`: the dead worker's unconfirmed batch
    uncertain_added_accepted: int  # of those, how many the server had accepted
    in_doubt: int
    sending: int
    accepted: int


@dataclass
class Figures:
    """The whole run, for the note."""

    contacts: int = CONTACTS
    crashes: int = CRASHES
    in_flight: int = IN_FLIGHT
    seed: int = SEED
    server_latency_seconds: float = LATENCY
    per_crash: list[Crash] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)


class Worker(Engagement):
    """`engagement --config CFG run` (the scheduler and the API server) as a child process."""

    def __init__(self, config_path: Path, log: Path) -> None:
        self.port = free_port()
        super().__init__(config_path, log, "run", "--port", str(self.port))


@dataclass
class Setup:
    """The server process, the worker's config file and the database it sends from."""

    server: SendgridProcess
    config_path: Path
    db: Database


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """A server (answering after LATENCY) and a config pointing the worker at it; queue with `build`."""
    with SendgridProcess(tmp_path / "sendgrid.db") as server:
        server.slow_next(10**9, delay=LATENCY)
        config_path = welcome_world.write(
            tmp_path,
            api_url=server.url,
            api_key=server.api_key,
            in_flight=IN_FLIGHT,
            tick_seconds=1,
            lease="1s",
        )
        db = Database(config.load(config_path).database_url)
        migrate.upgrade(db)
        yield Setup(server, config_path, db)
        db.dispose()


def build(setup: Setup, contacts: int = CONTACTS) -> None:
    """Members in contacts/10 accounts; a tick with the email provider paused queues one email each."""
    engine, report = welcome_world.queue(config.load(setup.config_path), setup.db, contacts, per_account=10)
    assert report.total("enrolled") == report.total("queued") == contacts
    assert isinstance(engine.ports.email, RecordingEmail) and engine.ports.email.sent == []
    assert statuses(setup.db) == {"queued": contacts}


def statuses(db: Database) -> Counter[str]:
    with db.begin() as conn:
        return Counter(dict(conn.execute(select(d.c.status, func.count()).group_by(d.c.status)).all()))


def ids(db: Database, *wanted: str) -> set[str]:
    with db.begin() as conn:
        return set(conn.execute(select(d.c.id).where(d.c.status.in_(wanted))).scalars())


def accepted_ids(ledger: Ledger) -> set[str]:
    return {a.delivery_id for a in ledger.accepted() if a.delivery_id is not None}


def crash(setup: Setup, seconds: float, log: Path) -> None:
    """Start a worker, let it send for `seconds` after it says it started, SIGKILL it."""
    worker = Worker(setup.config_path, log)
    try:
        worker.wait_started()
        time.sleep(seconds)
    finally:
        worker.kill()


def finish(setup: Setup, log: Path) -> float:
    """Run one more worker until nothing is queued or sending, SIGTERM it; the seconds it took."""
    worker = Worker(setup.config_path, log)
    try:
        worker.wait_started()
        started = time.monotonic()
        while (counts := statuses(setup.db))["queued"] or counts["sending"]:
            assert time.monotonic() - started < FINISH_WITHIN, f"not finished: {counts}"
            time.sleep(0.25)
        took = time.monotonic() - started
        assert worker.stop() == 0, log.read_text()
    finally:
        if worker.process.poll() is None:
            worker.kill()
    return took


@pytest.mark.slow
def test_a_worker_killed_twenty_times_mid_send_accepts_nothing_twice_and_loses_nothing(
    setup: Setup, tmp_path: Path
) -> None:
    build(setup)
    db, ledger = setup.db, setup.server.ledger
    figures = Figures()
    run_for = random.Random(SEED)
    uncertain: set[str] = set()
    for run in range(1, CRASHES + 1):
        seconds = run_for.uniform(*RUN_SECONDS)
        crash(setup, seconds, tmp_path / f"worker-{run:02d}.log")

        now_uncertain = ids(db, *UNCERTAIN)
        added = now_uncertain - uncertain
        accepted = accepted_ids(ledger)
        counts = statuses(db)
        figures.per_crash.append(
            Crash(run, round(seconds, 3), counts["sent"], counts["queued"], len(added), len(added & accepted),
                  counts["in_doubt"], counts["sending"], len(accepted))
        )  # fmt: skip
        print(f"crash {run:2d}: {asdict(figures.per_crash[-1])}", flush=True)
        assert now_uncertain >= uncertain, "a delivery in doubt changed state (was it sent again?)"
        assert len(added) <= IN_FLIGHT, f"crash {run} put {len(added)} deliveries in doubt"
        assert counts.total() == CONTACTS and set(counts) <= {"queued", "sent", *UNCERTAIN}, counts
        assert not accepted & ids(db, "queued"), "an accepted delivery is queued to go out again"
        assert ledger.counts().duplicates == 0
        uncertain = now_uncertain
    finished = finish(setup, tmp_path / "worker-final.log")

    with db.begin() as conn:
        rows = conn.execute(select(d.c.id, d.c.status, d.c.provider_message_id)).all()
    final = Counter(r.status for r in rows)
    accepted_as = {a.delivery_id: a.message_id for a in ledger.accepted()}
    in_doubt = {r.id for r in rows if r.status == "in_doubt"}
    sent = {r.id: r.provider_message_id for r in rows if r.status == "sent"}
    server = ledger.counts()
    figures.final = {
        "statuses": dict(final),
        "in_doubt_accepted_by_server": len(in_doubt & accepted_as.keys()),
        "in_doubt_never_accepted": len(in_doubt - accepted_as.keys()),
        "server": asdict(server),
        "server_answers": {
            str(k): v for k, v in sorted(Counter(r.status for r in ledger.requests()).items())
        },
        "final_run_seconds_to_drain": round(finished, 2),
        "max_in_doubt_added_by_one_crash": max(c.uncertain_added for c in figures.per_crash),
    }
    print(json.dumps(figures.final, indent=2), flush=True)
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(asdict(figures), indent=2) + "\n")

    assert server.duplicates == 0, "a delivery id was accepted twice"
    assert final.total() == CONTACTS and set(final) <= {"sent", "in_doubt"}, final
    assert final["in_doubt"] == len(uncertain) <= CRASHES * IN_FLIGHT
    assert {i: accepted_as.get(i) for i in sent} == sent, "a sent delivery is not the message the server kept"
    assert accepted_as.keys() <= sent.keys() | in_doubt, "the server kept a delivery we do not know as sent"
    assert server.accepted == len(sent) + len(in_doubt & accepted_as.keys())
    listed = CliRunner().invoke(
        app, ["--config", str(setup.config_path), "deliveries", "--in-doubt", "--limit", "3"]
    )
    assert listed.exit_code == 0 and f"in_doubt {len(in_doubt)}, sent {len(sent)}" in listed.output


def test_sigterm_finishes_the_batch_in_flight_stops_the_api_and_leaves_the_rest_queued(
    setup: Setup, tmp_path: Path
) -> None:
    build(setup, 2_000)  # 8 connections at LATENCY per answer: at least 4 s of sending
    worker = Worker(setup.config_path, tmp_path / "worker.log")
    try:
        worker.wait_started()
        time.sleep(1.0)
        health = httpx.get(f"http://127.0.0.1:{worker.port}/healthz", timeout=5)
        assert health.json() == {"status": "ok"}, "the API server does not run beside the scheduler"
        stopped = time.monotonic()
        assert worker.stop() == 0
    finally:
        if worker.process.poll() is None:
            worker.kill()

    counts, server = statuses(setup.db), setup.server.ledger.counts()
    assert time.monotonic() - stopped < 5, "the worker kept sending after SIGTERM"
    assert set(counts) == {"sent", "queued"}, counts  # nothing left sending or in doubt
    assert server.accepted == counts["sent"] and server.duplicates == 0
