"""`engagement report retention` over 200,000 accounts and 3M revenue rows, 24 months (target: ≤ 5 s).

Run: .venv/bin/python bench/retention_scale.py [--backend sqlite|postgresql] [--url URL] [--reuse]

Builds bench/out/retention_scale/ (config.toml, and the SQLite file or the PostgreSQL database named by
--url, migrated with Alembic so the indexes are the shipped ones): 200,000 accounts that sign up from a
year before the range to its last month (touch tiers and plans mixed), and 3,000,000 revenue rows, 15
an account on average: the first at signup, the others at seeded random instants up to the range's end,
each a random step of the account's MRR (expansion, contraction, churn to 0, a return after a churn),
with the plan that MRR buys and the next signup anniversary as renewal date, and their revenue_month
states (rebuilt at once: the rows go in behind the writers' backs). Then it times the command
itself, each format and split in its own process, as a user would run it, and prints wall and CPU time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from report_scale import time_report  # the same timing of one `engagement report` process

from engagement import config
from engagement.reports import months
from engagement.store import migrate, revenue_months
from engagement.store.database import Database

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("RETENTION_SCALE_DIR", ROOT / "bench" / "out" / "retention_scale"))
FIRST, LAST = "2025-01", "2026-12"  # 24 months
PLANS = ((49.0, "starter"), (99.0, "team"), (249.0, "business"), (999.0, "enterprise"))
TOUCH = ("tech", "tech", "tech", "low", "low", "high")


def _plan(mrr: float) -> str:
    return next((name for price, name in reversed(PLANS) if mrr >= price), PLANS[0][1])


def _anniversary(signup: datetime, after: datetime) -> date:
    years = max(
        1, after.year - signup.year + (1 if (after.month, after.day) >= (signup.month, signup.day) else 0)
    )
    day = min(signup.day, 28)
    return date(signup.year + years, signup.month, day)


def generate(
    accounts: int, rows: int, seed: int = 15
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Account rows and revenue rows (account_id, effective_at, mrr, plan, renewal_date), seeded."""
    rng = random.Random(seed)
    start = months.first_instant(months.parse("--from", FIRST))
    end = months.first_instant(months.parse("--to", LAST) + 1)
    earliest = start - timedelta(days=365)
    span = (end - timedelta(days=30) - earliest).total_seconds()
    account_rows, revenue_rows = [], []
    per_account = rows / accounts
    counts = [max(1, round(rng.uniform(1, 2 * per_account - 1))) for _ in range(accounts)]
    left = rows - sum(counts)
    while left:  # exactly `rows` in all
        i, step = rng.randrange(accounts), 1 if left > 0 else -1
        if counts[i] + step >= 1:
            counts[i] += step
            left -= step
    for i, count in enumerate(counts):
        account = f"acct-{i:06d}"
        signup = earliest + timedelta(seconds=rng.random() * span)
        mrr = rng.choice(PLANS)[0]
        account_rows.append(
            (
                account,
                f"Account {i}",
                _plan(mrr),
                mrr,
                rng.choice(TOUCH),
                signup,
                _anniversary(signup, signup),
            )
        )
        instants = sorted(signup + (end - signup) * rng.random() for _ in range(count - 1))
        revenue_rows.append((account, signup, mrr, _plan(mrr), _anniversary(signup, signup)))
        for at in instants:
            roll = rng.random()
            if mrr == 0:
                mrr = rng.choice(PLANS)[0] if roll < 0.5 else 0.0
            elif roll < 0.08:
                mrr = 0.0
            elif roll < 0.55:
                mrr = round(mrr * rng.uniform(1.05, 1.6))
            else:
                mrr = round(mrr * rng.uniform(0.6, 0.95))
            revenue_rows.append((account, at, float(mrr), _plan(mrr), _anniversary(signup, at)))
    return account_rows, revenue_rows


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def build(backend: str, url: str | None, accounts: int, rows: int) -> Path:
    """A fresh folder with config and a migrated database full of revenue rows."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    database_url = "sqlite:///engagement.db" if backend == "sqlite" else str(url)
    (OUT / "config.toml").write_text(
        f'[database]\nurl = "{database_url}"\n[journeys]\ndir = "{ROOT / "journeys"}"\n'
    )
    settings = config.load(OUT / "config.toml")
    db = Database(settings.database_url)
    if backend != "sqlite":
        with db.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate.upgrade(db)
    began = time.perf_counter()
    account_rows, revenue_rows = generate(accounts, rows)
    print(
        f"generated {len(account_rows):,} accounts, {len(revenue_rows):,} revenue rows in "
        f"{time.perf_counter() - began:.1f} s",
        flush=True,
    )
    if backend == "sqlite":
        conn = sqlite3.connect(OUT / "engagement.db")
        conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")
        conn.executemany(
            "INSERT INTO account (id, name, plan, mrr, touch, touch_explicit, signed_up_at, renewal_date, traits)"
            " VALUES (?, ?, ?, ?, ?, 0, ?, ?, '{}')",
            [(a, n, p, m, t, _stamp(s), r.isoformat()) for a, n, p, m, t, s, r in account_rows],
        )
        conn.executemany(
            "INSERT INTO revenue (account_id, effective_at, mrr, plan, renewal_date, source) VALUES (?, ?, ?, ?, ?, 'import')",
            ((a, _stamp(e), m, p, r.isoformat()) for a, e, m, p, r in revenue_rows),
        )
        conn.commit()
        conn.close()
    else:
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy(  # type: ignore[attr-defined]
                "COPY account (id, name, plan, mrr, touch, touch_explicit, signed_up_at, renewal_date, traits)"
                " FROM STDIN"
            ) as copy:
                for a, n, p, m, t, s, r in account_rows:
                    copy.write_row((a, n, p, m, t, False, s, r, "{}"))
            with cursor.copy(
                "COPY revenue (account_id, effective_at, mrr, plan, renewal_date, source) FROM STDIN"
            ) as copy:
                for a, e, m, p, r in revenue_rows:
                    copy.write_row((a, e, m, p, r, "import"))
            raw.commit()
            cursor.execute("ANALYZE account")
            cursor.execute("ANALYZE revenue")
            raw.commit()
        finally:
            raw.close()
    began = time.perf_counter()
    # the rows went in behind the writers' backs: their revenue_month states, at once
    with db.begin() as conn:
        revenue_months.rebuild(conn)
        if backend != "sqlite":
            conn.exec_driver_sql("ANALYZE revenue_month")
    print(f"revenue_month rebuilt in {time.perf_counter() - began:.1f} s", flush=True)
    db.dispose()
    return OUT / "config.toml"


def _runs(config_path: Path, runs: int, *args: str) -> None:
    timings = [time_report(config_path, *args) for _ in range(runs)]
    walls = ", ".join(f"{w:.2f}" for w, _ in timings)
    cpus = ", ".join(f"{c:.2f}" for _, c in timings)
    print(f"engagement report {' '.join(args)}: wall {walls} s; cpu {cpus} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="the PostgreSQL database to fill (everything in it is dropped)")
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--reuse", action="store_true", help="time the database built by an earlier run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each command")
    parser.add_argument("--formats", default="table,csv,json,html")
    parser.add_argument("--splits", default="touch,plan,cohort")
    args = parser.parse_args()
    if args.backend == "postgresql" and not args.url:
        parser.error("--backend postgresql needs --url postgresql://user:password@host/db")
    began = time.perf_counter()
    path = OUT / "config.toml"
    if not args.reuse:
        path = build(args.backend, args.url, args.accounts, args.rows)
        print(f"built in {time.perf_counter() - began:.1f} s", flush=True)
    with open("/proc/loadavg") as load:
        print("load average before timing:", load.read().split()[:3], flush=True)
    span = ("--from", FIRST, "--to", LAST)
    for fmt in filter(None, args.formats.split(",")):
        _runs(path, args.runs, "retention", *span, "--format", fmt)
    for by in filter(None, args.splits.split(",")):
        _runs(path, args.runs, "retention", *span, "--by", by, "--format", "json")
    _runs(path, args.runs, "--help")  # `report --help`: start-up and imports alone
    with open("/proc/loadavg") as load:
        print("load average after timing:", load.read().split()[:3], flush=True)


if __name__ == "__main__":
    main()
