"""Engagement scoring: the first credit of a large history, an incremental credit, and the daily snapshot.

Run: .venv/bin/python bench/scoring.py [--contacts 10000] [--events 200000] [--responses 50000] [--url URL]

A fresh database (a SQLite file, or the PostgreSQL database `--url` names, whose tables are dropped first)
gets `--contacts` contacts in 1/4 as many accounts, `--events` product events spread over 60 days
(5% of them funnel milestones) and `--responses` email and nudge responses. Timed: (a) `scoring.credit`
over all of it (the first tick after an import), (b) a second `credit` after 2,000 more events and 500
more responses arrive (a busy tick), (c) a `credit` with nothing new (every tick's floor cost), and
(d) `scoring.snapshot` of every contact and account.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from engagement import config
from engagement.scores import scoring
from engagement.store import schema
from engagement.store.database import Database

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KINDS = ("delivered", "open", "open", "click", "seen", "clicked", "dismissed", "bounce", "unsubscribe")
MILESTONES = ("first_login", "integration_connected", "first_report_created")


def fill(
    db: Database, contacts: int, events: int, responses: int, rng: random.Random, start: int = 0
) -> None:
    accounts = max(1, contacts // 4)
    with db.begin() as conn:
        if start == 0:
            conn.execute(insert(schema.accounts), [{"id": f"a{i}", "name": f"A{i}"} for i in range(accounts)])
            conn.execute(
                insert(schema.contacts),
                [
                    {"id": f"c{i}", "account_id": f"a{i % accounts}", "email": f"c{i}@example.com"}
                    for i in range(contacts)
                ],
            )
        rows: list[dict[str, Any]] = []
        for _ in range(events):
            c = rng.randrange(contacts)
            at = NOW - timedelta(minutes=rng.randrange(60 * 24 * 60))
            name = rng.choice(MILESTONES) if rng.random() < 0.05 else "report_viewed"
            rows.append({
                "contact_id": f"c{c}", "account_id": f"a{c % accounts}", "name": name, "timestamp": at,
                "properties": {}, "source": "product", "received_at": NOW,
            })  # fmt: skip
        for chunk in range(0, len(rows), 10_000):
            conn.execute(insert(schema.events), rows[chunk : chunk + 10_000])
        rows = []
        for i in range(responses):
            c = rng.randrange(contacts)
            rows.append({
                "delivery_id": f"d{start}-{i // 3}", "contact_id": f"c{c}", "journey_id": "j", "step_id": "s",
                "kind": rng.choice(KINDS), "occurred_at": NOW - timedelta(minutes=rng.randrange(60 * 24 * 60)),
                "dedupe_key": f"{start}-{i}", "data": {},
            })  # fmt: skip
        for chunk in range(0, len(rows), 10_000):
            conn.execute(insert(schema.responses), rows[chunk : chunk + 10_000])


def timed(label: str, work: Any) -> Any:
    began = time.perf_counter()
    result = work()
    print(f"{label}: {time.perf_counter() - began:.3f} s ({result})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--responses", type=int, default=50_000)
    parser.add_argument(
        "--url", help="a PostgreSQL URL (its tables are dropped); default a temporary SQLite file"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        schema.metadata.drop_all(db.engine)
        db.create_all()
        settings = config.Settings()
        rng = random.Random(7)
        fill(db, args.contacts, args.events, args.responses, rng)
        print(f"{db.dialect}: {args.contacts} contacts, {args.events} events, {args.responses} responses")
        timed("(a) first credit of the whole history", lambda: scoring.credit(db, settings, NOW))
        fill(db, args.contacts, 2_000, 500, rng, start=1)
        later = NOW + timedelta(minutes=1)
        timed("(b) credit after 2,000 events and 500 responses", lambda: scoring.credit(db, settings, later))
        timed(
            "(c) credit with nothing new", lambda: scoring.credit(db, settings, later + timedelta(minutes=1))
        )
        timed("(d) snapshot of every contact and account", lambda: scoring.snapshot(db, settings, later))
        with db.begin() as conn:
            credits = conn.execute(select(func.count()).select_from(schema.score_credits)).scalar_one()
        print(f"score_credit rows: {credits}")
        if args.url:
            schema.metadata.drop_all(db.engine)
        db.dispose()


if __name__ == "__main__":
    main()
