"""`engagement import revenue FILE` at scale: 1M revenue rows (issue 15: ≤ 30 s on SQLite).

Run: .venv/bin/python bench/revenue_import.py --folder DIR [--rows 1000000] [--accounts 50000]
     .venv/bin/python bench/revenue_import.py --folder DIR --postgres-url postgresql://…/db

Builds a database with `--accounts` accounts (not timed), writes a CSV of `--rows` revenue rows (each
account a monthly history, shuffled so accounts are spread over the whole file, a plan on every fourth
row), then times the import as the CLI runs it (`importer.import_file`, one transaction), and a second
import of the same file (which changes nothing). Checks the result: every row stored once, and each
account's `mrr` equal to its latest row's (set-based, in SQL). Prints one JSON line: wall seconds and
this process's CPU seconds (user + sys; on PostgreSQL the server's CPU is not in it) per phase.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from engagement import config
from engagement.ingest import importer
from engagement.store import migrate, schema
from engagement.store.database import Database

NOW = datetime(2026, 12, 1, tzinfo=UTC)
START = datetime(2020, 1, 1, tzinfo=UTC)
PLANS = ("starter", "pro", "business", "enterprise")


def cpu() -> float:
    """This process's user + system CPU seconds so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(db: Database, accounts: int) -> None:
    """The accounts the revenue rows are for (not timed)."""
    rows = [
        {
            "id": f"acct-{n:07d}",
            "name": f"Account {n}",
            "plan": "pro",
            "mrr": 0.0,
            "touch": "tech",
            "traits": {},
        }
        for n in range(accounts)
    ]
    with db.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(schema.accounts.insert(), rows[start : start + 5000])


def write_file(path: Path, rows: int, accounts: int, seed: int = 15) -> None:
    """`rows` revenue rows: each account's months from START on, in shuffled order."""
    rng = random.Random(seed)
    per = -(-rows // accounts)
    keys = [(n, m) for n in range(accounts) for m in range(per)][:rows]
    rng.shuffle(keys)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["account_id", "effective_at", "mrr", "plan", "renewal_date"])
        for n, month in keys:
            at = START + timedelta(days=30 * month, hours=n % 24)
            plan = PLANS[(n + month) % 4] if month % 4 == 0 else ""
            renewal = (at + timedelta(days=365)).date().isoformat() if month % 12 == 0 else ""
            out.writerow(
                [
                    f"acct-{n:07d}",
                    at.isoformat().replace("+00:00", "Z"),
                    f"{rng.uniform(10, 9000):.2f}",
                    plan,
                    renewal,
                ]
            )


def timed(db: Database, settings: config.Settings, path: Path, now: datetime) -> dict[str, Any]:
    wall, used = time.perf_counter(), cpu()
    result = importer.import_file(db, settings, "revenue", path, now)
    return {
        "imported": result.imported,
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(cpu() - used, 2),
    }


def check(db: Database, rows: int) -> dict[str, Any]:
    """Every row stored once; no account whose mrr differs from its latest row's."""
    r = schema.table(schema.Revenue)
    a = schema.accounts
    latest = select(r.c.mrr).where(r.c.account_id == a.c.id).order_by(r.c.effective_at.desc()).limit(1)
    with db.begin() as conn:
        stored = conn.execute(select(func.count()).select_from(r)).scalar_one()
        wrong = conn.execute(
            select(func.count()).select_from(a).where(a.c.mrr != latest.scalar_subquery())
        ).scalar_one()
    assert stored == rows, (stored, rows)
    assert wrong == 0, wrong
    return {"stored": stored, "accounts_off_their_latest_row": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--postgres-url", default="")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    url = args.postgres_url or f"sqlite:///{args.folder / 'revenue.db'}"
    if not args.postgres_url:
        (args.folder / "revenue.db").unlink(missing_ok=True)
    db = Database(url)
    if args.postgres_url:
        with db.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(db)
    settings = config.load(None, database={"url": url})
    build(db, args.accounts)
    path = args.folder / "revenue.csv"
    if not path.exists() or sum(1 for _ in path.open()) != args.rows + 1:
        write_file(path, args.rows, args.accounts)
    first = timed(db, settings, path, NOW)
    again = timed(db, settings, path, NOW + timedelta(hours=1))
    checked = check(db, args.rows)
    dialect = db.dialect
    print(
        json.dumps(
            {
                "dialect": dialect,
                "rows": args.rows,
                "accounts": args.accounts,
                "import": first,
                "reimport": again,
                **checked,
            }
        )
    )


if __name__ == "__main__":
    main()
