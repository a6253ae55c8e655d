"""Tick time and peak memory as contacts grow (SQLite, the four shipped journeys).

Run: .venv/bin/python bench/tick_scale.py [--sizes 10000,30000,100000]
Each size gets a fresh database; the first tick and a steady-state tick each run in their own
subprocess, so the reported peak RSS is that tick's alone.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from engagement import config
from engagement.delivery.recording import CountingEmail, RecordingWebhook
from engagement.engine import Engine
from engagement.store import migrate, schema
from engagement.store.database import Database

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
PLANS = ["free", "starter", "pro", "business"]


def build(url: str, contacts: int, seed: int = 1) -> None:
    """Bulk-load `contacts` contacts in contacts/5 accounts, with signups and activity."""
    rng = random.Random(seed)
    db = Database(url)
    migrate.upgrade(db)
    accounts = max(1, contacts // 5)
    with db.begin() as conn:
        rows = [
            {
                "id": f"a{i}",
                "name": f"Account {i}",
                "plan": rng.choice(PLANS),
                "mrr": rng.choice([0, 49, 299, 1500]),
                "touch": "tech",
                "signed_up_at": NOW - timedelta(days=rng.randint(1, 400)),
                "renewal_date": date(2026, 3, 2) + timedelta(days=rng.randint(0, 365)),
                "traits": {},
            }
            for i in range(accounts)
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(schema.accounts.insert(), rows[start : start + 5000])
        batch: list[dict[str, object]] = []
        events: list[dict[str, object]] = []
        for i in range(contacts):
            created = NOW - timedelta(hours=rng.randint(1, 24 * 120))
            batch.append(
                {
                    "id": f"c{i}",
                    "account_id": f"a{i % accounts}",
                    "email": f"c{i}@example.com",
                    "first_name": "Sam",
                    "last_name": "Lee",
                    "role": rng.choice(["admin", "member", "member"]),
                    "timezone": "UTC",
                    "created_at": created,
                    "traits": {},
                }
            )
            events.append(
                {
                    "contact_id": f"c{i}",
                    "account_id": f"a{i % accounts}",
                    "name": "signed_up",
                    "timestamp": created,
                    "properties": {},
                    "source": "bench",
                    "received_at": NOW,
                }
            )
            for _ in range(rng.choice([0, 1, 2, 5, 9])):
                at = NOW - timedelta(hours=rng.randint(1, 24 * 20))
                events.append(
                    {
                        "contact_id": f"c{i}",
                        "account_id": f"a{i % accounts}",
                        "name": "active_day",
                        "timestamp": at,
                        "properties": {},
                        "source": "bench",
                        "received_at": NOW,
                    }
                )
            if len(batch) >= 5000:
                conn.execute(schema.contacts.insert(), batch)
                conn.execute(schema.events.insert(), events)
                batch, events = [], []
        if batch:
            conn.execute(schema.contacts.insert(), batch)
            conn.execute(schema.events.insert(), events)
        conn.exec_driver_sql(
            "INSERT INTO milestone (contact_id, name, account_id, reached_at) "
            "SELECT contact_id, name, min(account_id), min(timestamp) FROM event GROUP BY contact_id, name"
        )
    db.dispose()


def tick_once(url: str, at: str) -> None:
    """Child process: one tick at `at`; prints seconds, counts and peak RSS as JSON."""
    settings = config.load(ROOT / "config.toml", database={"url": url})
    engine = Engine(settings, email=CountingEmail(), webhooks=RecordingWebhook())
    started = time.perf_counter()
    report = engine.tick(datetime.fromisoformat(at))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "enrolled": report.total("enrolled"),
                "queued": report.total("queued"),
                "sent": report.dispatched.sent,
                "peak_rss_mb": peak_mb,
            }
        )
    )


def measure(url: str, at: datetime) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--tick", url, at.isoformat()], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--tick", nargs=2)
    args = parser.parse_args()
    if args.tick:
        tick_once(*args.tick)
        return
    print(
        f"{'contacts':>9} {'build s':>8} {'first tick s':>13} {'enrolled':>9} {'sent':>7} {'peak MB':>8} "
        f"{'steady tick s':>14} {'peak MB':>8}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            started = time.perf_counter()
            build(url, size)
            built = time.perf_counter() - started
            first = measure(url, NOW)
            steady = measure(url, NOW + timedelta(minutes=1))
            print(
                f"{size:>9} {built:>8.1f} {first['seconds']:>13.2f} {first['enrolled']:>9.0f} {first['sent']:>7.0f} "
                f"{first['peak_rss_mb']:>8.0f} {steady['seconds']:>14.2f} {steady['peak_rss_mb']:>8.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
