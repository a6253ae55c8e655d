"""The CS views' search at 1M contacts on SQLite and PostgreSQL (target: ≤ 100 ms a search).

Run: .venv/bin/python bench/search_scale.py [--contacts 1000000] [--postgres URL] [--repeat 20]

Builds a database migrated with Alembic (so the search indexes are the shipped 0023 ones), writes
`--contacts` contacts in `--contacts / 20` accounts with set-based SQL (a recursive CTE on SQLite,
generate_series on PostgreSQL), ANALYZEs, then times `views.search.search` for each kind of query the
search box answers: an exact contact id, an email prefix, a first-name prefix, a last-name prefix, a
"first last" pair, an account-name prefix, a one-letter prefix (the widest) and a miss. Prints, per
engine and query, the median and worst wall time over `--repeat` runs, the client's CPU time
(`time.process_time`, which leaves out PostgreSQL's server process) and the hits. The SQLite file is
bench/out/search_scale/engagement.db; the PostgreSQL database named by --postgres is emptied first.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from sqlalchemy import text

from engagement.store import migrate
from engagement.store.database import Database
from engagement.views import search

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "search_scale"
FIRST = ["Ann", "Bob", "Carla", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena", "Mo",
         "Nia", "Omar", "Pia", "Quin", "Rae", "Sam", "Tova"]  # fmt: skip
LAST = ["Smith", "Lee", "Garcia", "Khan", "Novak", "Okafor", "Rossi", "Tanaka", "Weber", "Young"]
QUERIES = {
    "exact contact id": "c0654321",
    "email prefix": "user65432",
    "first-name prefix": "han",
    "last-name prefix": "okaf",
    "first + last": "ann smi",
    "account-name prefix": "account 4321",
    "one letter": "a",
    "miss": "zzzzq",
}


def _series(dialect: str, n: int) -> str:
    """A SELECT of integers 0 .. n-1 as column i."""
    if dialect == "postgresql":
        return f"SELECT g AS i FROM generate_series(0, {n - 1}) AS g"
    return (
        f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n - 1}) SELECT i FROM s"
    )


def _pick(names: list[str], column: str) -> str:
    cases = " ".join(f"WHEN {k} THEN '{v}'" for k, v in enumerate(names))
    return f"CASE ({column}) % {len(names)} {cases} END"


def seed(db: Database, contacts: int) -> float:
    """Write the accounts and contacts; return the seconds it took."""
    started = time.perf_counter()
    accounts = max(contacts // 20, 1)
    dialect = db.dialect

    def pad(expr: str) -> str:
        return f"lpad(CAST({expr} AS TEXT), 7, '0')" if dialect == "postgresql" else f"printf('%07d', {expr})"

    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO account (id, name, plan, mrr, touch, touch_explicit, traits) "
                f"SELECT 'a' || {pad('i')}, 'Account ' || CAST(i AS TEXT), 'pro', 100.0, 'tech', false, '{{}}' "
                f"FROM ({_series(dialect, accounts)}) AS n"
            )
        )
        conn.execute(
            text(
                "INSERT INTO contact (id, account_id, email, first_name, last_name, role, timezone, traits) "
                f"SELECT 'c' || {pad('i')}, 'a' || {pad(f'i % {accounts}')}, "
                f"'user' || CAST(i AS TEXT) || '@example' || CAST(i % 97 AS TEXT) || '.com', "
                f"{_pick(FIRST, 'i')}, {_pick(LAST, 'i / 7')}, 'member', 'UTC', '{{}}' "
                f"FROM ({_series(dialect, contacts)}) AS n"
            )
        )
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - started


def fresh(url: str) -> Database:
    """An empty database at `url`, migrated to head."""
    db = Database(url)
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(db)
    return db


def measure(db: Database, repeat: int) -> list[tuple[str, float, float, float, int]]:
    """(query kind, median ms, worst ms, CPU ms a search, hits) for every query."""
    found = []
    with db.engine.connect() as conn:
        search.search(conn, "warm")  # the first statement of a connection pays its setup
        for kind, query in QUERIES.items():
            walls, hits = [], 0
            cpu = time.process_time()
            for _ in range(repeat):
                started = time.perf_counter()
                hits = len(search.search(conn, query))
                walls.append((time.perf_counter() - started) * 1000)
            cpu_ms = (time.process_time() - cpu) * 1000 / repeat
            found.append((kind, statistics.median(walls), max(walls), cpu_ms, hits))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL to run on too (its database is emptied)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / "engagement.db"
    target.unlink(missing_ok=True)
    urls = [("sqlite", f"sqlite:///{target}")] + ([("postgresql", args.postgres)] if args.postgres else [])
    for name, url in urls:
        db = fresh(url)
        seconds = seed(db, args.contacts)
        print(f"{name}: {args.contacts:,} contacts written in {seconds:.1f} s")
        print(f"  {'query':<22}{'median ms':>10}{'worst ms':>10}{'CPU ms':>9}{'hits':>6}")
        for kind, median, worst, cpu, hits in measure(db, args.repeat):
            print(f"  {kind:<22}{median:>10.2f}{worst:>10.2f}{cpu:>9.2f}{hits:>6}")
        db.dispose()


if __name__ == "__main__":
    main()
