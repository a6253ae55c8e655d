"""100,000 Segment track events ingested through the HTTP API, in batches of 500.

Run: .venv/bin/python bench/ingest_segment.py [--events 100000] [--batch 500] [--concurrency 2] [--workers 2]
     [--database-url postgresql://…]   (default: a fresh SQLite file)

Set-up (not timed): a migrated database with 10,000 contacts in 2,000 accounts; 100,000 track calls
as Segment's SDKs send them (type, userId, event, properties, timestamp, messageId, context, integrations)
over six event names, cut into `/v1/batch` bodies. `engagement serve` runs as its own process (uvicorn).

Timed: every batch POSTed to /v1/batch with the write key as the HTTP Basic username (cap, parse, type,
de-duplicate on messageId, store events and milestones; one transaction per request). Target <= 5 s for
100,000. Afterwards the database must hold every event once and one milestone per (contact, name) reached.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engagement.store import schema
from engagement.store.database import Database
from engagement.testing.api_process import ApiProcess, bench_arguments, empty, timed_post_all
from engagement.testing.ingest_load import (
    CONTACTS,
    SEGMENT_HEADERS,
    WRITE_KEY,
    segment_batches,
    segment_database,
    track_calls,
)


def main() -> None:
    args = bench_arguments(__doc__, batch=500, seed=5)

    with tempfile.TemporaryDirectory(prefix="bench-segment-") as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'engagement.db'}"
        started = time.perf_counter()
        db = segment_database(url)
        found = track_calls(args.events, args.seed)
        bodies = segment_batches(found, args.batch)
        size = sum(map(len, bodies)) / len(bodies)
        print(
            f"set-up: {CONTACTS:,} contacts, {len(found):,} track calls in {len(bodies)} batches "
            f"(mean {size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s"
        )
        config_path = folder / "config.toml"
        config_path.write_text(
            f'[database]\nurl = "{url}"\n[server]\nworkers = {args.workers}\n[api]\nwrite_keys = ["{WRITE_KEY}"]\n'
        )
        with ApiProcess(config_path) as api:
            requests = [(body, SEGMENT_HEADERS) for body in bodies]
            answers, timed = timed_post_all(api, "/v1/batch", requests, args.concurrency)

        stored = sum(a["events"] for a in answers)
        print(
            timed.report(
                len(found),
                f"{args.batch:,} a batch, {args.concurrency} connection(s), {args.workers} server process(es), {db.dialect}",
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
