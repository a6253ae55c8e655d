"""Three `engagement worker` processes on one PostgreSQL database for 30 simulated days.

20,000 contacts from the demo's deterministic generator (about 4,700 accounts with their event histories,
including the signups and milestones still to come in the month), the four shipped journeys, emails to a
SendGrid-compatible server process that counts every request. The workers share one stepped clock (the
hidden `--sim-clock-file` option): the test moves it STEP at a time (30h07m, so ticks drift across every
hour of the day and every send window gets its turn) once all three workers have ticked at the current
instant. Two settings follow from the coarse steps: the sending lease is 3 days of that clock, longer than
a step, because a clock that jumps would otherwise expire the batch a worker is still sending (with the
wall clock, minutes are plenty); and `max_lateness` is 3 days, since a message held for its send window
may wait a whole step past the window's opening.

Checked: the server accepted no delivery id twice and accepted exactly the emails the ledger says were
sent; nothing is left `sending`, `in_doubt`, `failed` or `skipped_late`; no due message is left queued;
every nudge is in the inbox once; and all three workers sent some of it.

Slow (70 s on a quiet 2-core machine, 3-4 minutes on a shared one: some 34,000 emails over HTTP): marked
`slow`.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backends import migrated, postgres_url
from processes import Engagement
from sqlalchemy import func, insert, select, text

from engagement import config
from engagement.clock import FileClock
from engagement.dryrun.demo import dataset
from engagement.ingest import upserts as ingest
from engagement.ingest.records import AccountIn
from engagement.store import schema
from engagement.store.database import Database
from engagement.testing.sendgrid_server import SendgridProcess

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 2, 6, tzinfo=UTC)
DAYS = 30
STEP = timedelta(hours=30, minutes=7)
WORKERS = 3
ACCOUNTS = 4_700  # 20,236 contacts
TICK = re.compile(r"tick now=(\S+) .*?sent=(\d+) ")
CONFIG = """\
[database]
url = "{url}"
[journeys]
dir = "journeys"
[templates]
dir = "{templates}"
[email]
provider = "sendgrid"
from = "Workers Test <success@workers.test>"
[company]
name = "Workers Test, Inc."
postal_address = "1 Test Street, Testville, OR 97000, USA"
[email.sendgrid]
api_url = "{api_url}"
api_key = "{api_key}"
[webhooks.csm-alerts]
url = "https://hooks.example.com/services/csm-alerts"
[limits]
in_flight = 100
sending_lease = "3d"
[scheduler]
tick_seconds = 1
max_lateness = "3d"
"""
d = schema.deliveries


@pytest.fixture
def database() -> Iterator[Database]:
    with migrated(postgres_url()) as db:
        yield db


def load(db: Database, settings: config.Settings) -> int:
    """The demo generator's customer base for the month, bulk-inserted; returns how many contacts."""
    data = dataset.generate(start=START, days=DAYS, accounts=ACCOUNTS)
    events = [
        {"event_id": e["id"], "contact_id": e["contact_id"], "account_id": e["account_id"], "name": e["name"],
         "timestamp": e["timestamp"], "properties": e["properties"], "source": "product", "received_at": START}
        for e in data.events
    ]  # fmt: skip
    with db.begin() as conn:
        accounts = [AccountIn.model_validate(r) for r in data.accounts]
        ingest.upsert_accounts(db, conn, accounts, settings.touch, START)  # touch tiers from the config rules
        conn.execute(insert(schema.contacts), [{**c, "updated_at": START} for c in data.contacts])
        conn.execute(insert(schema.events), events)
        ingest.record_milestones(db, conn, events)
    with db.engine.connect() as conn:  # fresh tables have no statistics yet; autovacuum would get there later
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return len(data.contacts)


@pytest.mark.slow
def test_three_workers_on_one_postgresql_send_every_due_message_exactly_once(
    database: Database, tmp_path: Path
) -> None:
    shutil.copytree(REPO / "journeys", tmp_path / "journeys")
    with SendgridProcess(tmp_path / "sendgrid.db") as server:
        path = tmp_path / "config.toml"
        path.write_text(
            CONFIG.format(url=database.url, templates=REPO / "templates" / "email", api_url=server.url,
                          api_key=server.api_key)
        )  # fmt: skip
        settings = config.load(path)
        assert load(database, settings) >= 20_000

        clock = FileClock(tmp_path / "clock.txt")
        clock.set(START)
        option = ["--sim-clock-file", str(clock.path)]
        workers = [Engagement(path, tmp_path / f"worker-{i}.log", "worker", *option) for i in range(WORKERS)]
        try:
            for worker in workers:
                worker.wait_started()
            at = START
            while at < START + timedelta(days=DAYS):
                at += STEP
                clock.set(at)
                deadline = time.monotonic() + 300
                while not all(ticks(w) and ticks(w)[-1][0] >= at for w in workers):
                    assert time.monotonic() < deadline, f"the workers did not tick at {at}"
                    time.sleep(0.05)
            for worker in workers:
                assert worker.stop(within=120) == 0, worker.text()
        finally:
            for worker in workers:
                worker.ensure_dead()

        with database.begin() as conn:
            rows = conn.execute(select(d.c.id, d.c.channel, d.c.status, d.c.due_at)).all()
            nudges = conn.execute(
                select(func.count(), func.count(func.distinct(schema.nudges.c.delivery_id)))
            ).one()
        counts = server.ledger.counts()
        accepted = [a.delivery_id for a in server.ledger.accepted()]

    statuses = Counter(r.status for r in rows)
    sent_emails = {r.id for r in rows if r.channel == "email" and r.status == "sent"}
    sent_nudges = sum(1 for r in rows if r.channel == "in_app" and r.status == "sent")
    late_queued = [r for r in rows if r.status == "queued" and r.due_at <= at]
    per_worker = [sum(sent for _, sent in ticks(w)) for w in workers]
    print(f"\nstatuses {dict(statuses)}; server {counts}; sent per worker {per_worker}; nudges {nudges}")

    assert len(sent_emails) > 5_000, statuses
    assert counts.duplicates == 0, "a delivery id was accepted twice"
    assert len(accepted) == len(set(accepted)) == counts.accepted
    assert set(accepted) == sent_emails, "the server and the ledger disagree on what was sent"
    assert not {"sending", "in_doubt", "failed", "skipped_late"} & set(statuses), statuses
    assert late_queued == [], f"{len(late_queued)} due messages were never sent"
    assert nudges[0] == nudges[1] == sent_nudges
    assert all(sent > 0 for sent in per_worker), per_worker


def ticks(worker: Engagement) -> list[tuple[datetime, int]]:
    """Each tick's simulated time and how many messages it sent, from the worker's log."""
    return [(datetime.fromisoformat(at), int(sent)) for at, sent in TICK.findall(worker.text())]
