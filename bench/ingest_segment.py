"""100,000 Segment track events ingested through the HTTP API, in batches of 500.

Run: .venv/bin/python bench/ingest_segment.py [--events 100000] [--batch 500] [--concurrency 1]
     [--database-url postgresql://…]   (default: a fresh SQLite file)

Set-up (not timed): a migrated database with 10,000 contacts in 2,000 accounts; 100,000 track calls
as Segment's SDKs send them (type, userId, event, properties, timestamp, messageId, context, integrations)
over six event names, cut into `/v1/batch` bodies. `engagement serve` runs as its own process (uvicorn).

Timed: every batch POSTed to /v1/batch with the write key as the HTTP Basic username (cap, parse, type,
de-duplicate on messageId, store events and milestones; one transaction per request). Target <= 5 s for
100,000. Afterwards the database must hold every event once and one milestone per (contact, name) reached.
"""

from __future__ import annotations

import base64
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engagement import config, ingest
from engagement.records import AccountIn, ContactIn
from engagement.store import migrate, schema
from engagement.store.database import Database
from engagement.testing.api_process import ApiProcess, bench_arguments, empty, timed_post_all

WRITE_KEY = "wk-bench"
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NAMES = (
    "active_day",
    "report_viewed",
    "report_created",
    "dashboard_shared",
    "integration_connected",
    "first_login",
)
CONTACTS, PER_ACCOUNT = 10_000, 5


def build(url: str) -> Database:
    """A migrated database with the contacts and accounts the events are about."""
    db = Database(url)
    empty(db)  # a PostgreSQL database given with --database-url may hold an earlier run
    migrate.upgrade(db)
    accounts = [
        AccountIn(id=f"acc{i:05d}", name=f"Account {i}", plan="pro", mrr=99)
        for i in range(CONTACTS // PER_ACCOUNT)
    ]
    contacts = [
        ContactIn(id=f"u{i:06d}", account_id=f"acc{i // PER_ACCOUNT:05d}", email=f"u{i:06d}@example.com")
        for i in range(CONTACTS)
    ]
    with db.begin() as conn:
        ingest.upsert_accounts(db, conn, accounts, config.Touch(), START)
        ingest.upsert_contacts(db, conn, contacts, START)
    return db


def calls(count: int, seed: int) -> list[dict[str, Any]]:
    """Track calls as analytics-python sends them."""
    rng = random.Random(seed)
    found = []
    for i in range(count):
        at = START + timedelta(seconds=i * 3)
        found.append(
            {
                "type": "track",
                "userId": f"u{rng.randrange(CONTACTS):06d}",
                "event": rng.choice(NAMES),
                "properties": {
                    "report_id": rng.randrange(100_000),
                    "source": "web",
                    "duration_ms": rng.randrange(5000),
                },
                "timestamp": at.isoformat(timespec="milliseconds"),
                "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
                "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
                "integrations": {},
            }
        )
    return found


def batches(found: list[dict[str, Any]], size: int) -> list[bytes]:
    sent_at = datetime.now(UTC).isoformat()
    return [
        json.dumps({"batch": found[start : start + size], "sentAt": sent_at}, separators=(",", ":")).encode()
        for start in range(0, len(found), size)
    ]


HEADERS = {
    "Content-Type": "application/json",
    "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
}


def main() -> None:
    args = bench_arguments(__doc__, batch=500, seed=5)

    with tempfile.TemporaryDirectory(prefix="bench-segment-") as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'engagement.db'}"
        started = time.perf_counter()
        db = build(url)
        found = calls(args.events, args.seed)
        bodies = batches(found, args.batch)
        size = sum(map(len, bodies)) / len(bodies)
        print(
            f"set-up: {CONTACTS:,} contacts, {len(found):,} track calls in {len(bodies)} batches "
            f"(mean {size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s"
        )
        config_path = folder / "config.toml"
        config_path.write_text(f'[database]\nurl = "{url}"\n[api]\nwrite_keys = ["{WRITE_KEY}"]\n')
        with ApiProcess(config_path) as api:
            requests = [(body, HEADERS) for body in bodies]
            answers, timed = timed_post_all(api, "/v1/batch", requests, args.concurrency)

        stored = sum(a["events"] for a in answers)
        print(
            timed.report(
                len(found), f"{args.batch:,} a batch, {args.concurrency} connection(s), {db.dialect}"
            )
        )
        check(db, found, stored)
        print(f"target <= 5 s: {'met' if timed.seconds <= 5 else 'NOT met'}")
        if args.database_url:
            empty(db)
        db.dispose()


def check(db: Database, found: list[dict[str, Any]], stored: int) -> None:
    """Every event once; one milestone per (contact, event name)."""
    e, m = schema.events, schema.milestones
    with db.begin() as conn:
        events = conn.execute(select(func.count()).select_from(e)).scalar_one()
        milestones = conn.execute(select(func.count()).select_from(m)).scalar_one()
    reached = {(c["userId"], c["event"]) for c in found}
    print(f"database: {events:,} events, {milestones:,} milestones")
    assert stored == events == len(found), (stored, events)
    assert milestones == len(reached), (milestones, len(reached))


if __name__ == "__main__":
    main()
