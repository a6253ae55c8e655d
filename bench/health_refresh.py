"""Health scorecard refresh over a large base: the shipped scorecards over every account, on SQLite.

Run: .venv/bin/python bench/health_refresh.py [--accounts 200000] [--folder /tmp/health-bench]

Builds (once per folder) `--accounts` accounts (1% high, 9% low, 90% tech touch), five contacts each and
25 events per account over the last 90 days (70% report_viewed, the rest tickets, failed payments, logins),
one NPS answer per ten contacts and a revenue row per account, written straight through sqlite3 for speed.
Then times `compute.refresh` with the two shipped scorecards (scorecards/): a first refresh (every row
written), a second with nothing changed, and the daily snapshot. Prints wall and CPU (user + sys) seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engagement import config
from engagement.health import cards as scorecards
from engagement.health import compute
from engagement.store.database import Database

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent
NAMES = ["report_viewed"] * 14 + ["ticket_opened", "payment_failed", "first_login", "report_shared"]
NAMES += ["invoice_paid", "ticket_opened"]


def _ts(at: datetime) -> str:
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def build(path: Path, accounts: int) -> None:
    db = Database(f"sqlite:///{path}")
    db.create_all()
    db.dispose()
    rng = random.Random(16)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    touch = ["high"] * 1 + ["low"] * 9 + ["tech"] * 90
    conn.executemany(
        "INSERT INTO account (id, name, mrr, touch, touch_explicit, traits, signed_up_at) "
        "VALUES (?, ?, ?, ?, 0, '{}', ?)",
        ((f"a{i}", f"A{i}", 100.0, touch[i % 100], _ts(NOW - timedelta(days=400))) for i in range(accounts)),
    )
    conn.executemany(
        "INSERT INTO contact (id, account_id, email, first_name, last_name, timezone, traits) "
        "VALUES (?, ?, ?, '', '', 'UTC', '{}')",
        ((f"c{i}", f"a{i // 5}", f"c{i}@example.com") for i in range(accounts * 5)),
    )

    def events():  # type: ignore[no-untyped-def]
        for i in range(accounts * 25):
            a = i // 25
            c = a * 5 + rng.randrange(5)
            at = _ts(NOW - timedelta(minutes=rng.randrange(90 * 24 * 60)))
            yield (f"c{c}", f"a{a}", rng.choice(NAMES), at, at)

    conn.executemany(
        "INSERT INTO event (contact_id, account_id, name, timestamp, properties, source, received_at) "
        "VALUES (?, ?, ?, ?, '{}', 'product', ?)",
        events(),
    )
    conn.executemany(
        "INSERT INTO survey_answer (delivery_id, contact_id, account_id, journey_id, step_id, kind, score, answered_at) "
        "VALUES (?, ?, ?, 'j', 's', 'nps', ?, ?)",
        (
            (
                f"d{i}",
                f"c{i * 10}",
                f"a{i * 2}",
                rng.randrange(11),
                _ts(NOW - timedelta(days=rng.randrange(170))),
            )
            for i in range(accounts // 2)
        ),
    )
    conn.executemany(
        "INSERT INTO revenue (account_id, effective_at, mrr, source) VALUES (?, ?, ?, 'import')",
        ((f"a{i}", _ts(NOW - timedelta(days=200)), 100.0 + i % 7 * 50) for i in range(accounts)),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def timed(label: str, work):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    print(
        f"{label}: wall {time.perf_counter() - wall:.2f} s, CPU {time.process_time() - cpu:.2f} s ({result})",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/health-bench"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"health-{args.accounts}.db"
    if not path.exists():
        size = f"{args.accounts:,} accounts / {args.accounts * 5:,} contacts / {args.accounts * 25:,} events"
        timed(f"build {size}", lambda: build(path, args.accounts))
    settings = config.Settings()
    cards = scorecards.load(settings, [REPO / "scorecards"])
    cards.raise_problems()
    db = Database(f"sqlite:///{path}")
    timed("first refresh", lambda: compute.refresh(db, settings, cards, NOW))
    timed(
        "refresh, nothing changed", lambda: compute.refresh(db, settings, cards, NOW + timedelta(minutes=1))
    )
    timed(
        "daily snapshot (a refresh, then the copy)",
        lambda: compute.snapshot(db, settings, cards, NOW + timedelta(minutes=2)),
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(json.dumps({"scorecards": [c.id for c in cards.cards]}))


if __name__ == "__main__":
    main()
