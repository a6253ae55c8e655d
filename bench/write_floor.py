"""The write floor of the first tick: how long writing its rows takes when nothing has to be evaluated.

Run: .venv/bin/python bench/write_floor.py --folder DIR
     .venv/bin/python bench/write_floor.py --folder DIR --postgres-url postgresql://…/engagement_ft
         --template engagement_ftbuilt

DIR (and, on PostgreSQL, the template database) is first_tick.py's: run that first, with the same --size,
so the built world and a first tick over it exist. This script runs that first tick again on a fresh copy
(timed, as first_tick.py does), sets its enrollment and delivery rows aside in tables without indexes, and
then writes exactly those rows into a second fresh copy of the built world, in the order the tick wrote
them, with one `INSERT … SELECT` per table in one transaction, and commits. The indexes, unique keys and
triggers are the schema's; nothing is evaluated and no function is called per row, so whatever the tick
does beyond this floor is evaluation. Prints one JSON line per run.

On SQLite it writes twice: with the engine's own settings (WAL, synchronous=NORMAL, SQLite's page cache,
checkpoints every 10,000 pages), and at SQLite's best (a 1 GB page cache, no fsync, no checkpoint until
the commit). On PostgreSQL the rows are staged in UNLOGGED tables of the same database, enrollment and
delivery are truncated, and the rows are written back.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import first_tick  # bench/ is not a package: found by the path above
import scale
import steady_tick
from sqlalchemy import text

from engagement.store.database import Database

TABLES = ("enrollment", "delivery")
ORDER = {"enrollment": "id", "delivery": "enrollment_id, id"}  # the order the tick wrote them in


def _first_tick(folder: Path, url: str, postgres_url: str, template: str) -> dict[str, Any]:
    """Run first_tick.py's child on a fresh copy of the built world; its JSON line."""
    if postgres_url:
        first_tick._pg_copy(postgres_url, template)
    else:
        steady_tick._copy(folder / "built.db", folder / "bench.db")
    cfg = str(scale.write_config(folder, url))
    out = subprocess.run(
        [sys.executable, first_tick.__file__, "--child", cfg], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _sqlite_floor(folder: Path, best: bool) -> dict[str, Any]:
    """Write the first tick's rows (in folder/bench.db) into a fresh copy of folder/built.db."""
    steady_tick._copy(folder / "built.db", folder / "floor.db")
    conn = sqlite3.connect(str(folder / "floor.db"), isolation_level=None)
    settings = ["journal_mode=WAL", "foreign_keys=ON"]
    if best:
        settings += ["synchronous=OFF", "cache_size=-1000000", "wal_autocheckpoint=0"]
    else:  # as engagement.store.database sets up its connections
        settings += ["synchronous=NORMAL", "wal_autocheckpoint=10000"]
    for setting in settings:
        conn.execute(f"PRAGMA {setting}")
    conn.execute("ATTACH ? AS done", (str(folder / "bench.db"),))
    conn.execute("ATTACH ':memory:' AS staged")
    columns = {t: ", ".join(r[1] for r in conn.execute(f"PRAGMA main.table_info({t})")) for t in TABLES}
    for t in TABLES:
        conn.execute(f"CREATE TABLE staged.{t} AS SELECT {columns[t]} FROM done.{t} ORDER BY {ORDER[t]}")
    out: dict[str, Any] = {"settings": "best" if best else "engine"}
    conn.execute("BEGIN")
    started = time.perf_counter()
    for t in TABLES:
        at = time.perf_counter()
        rows = conn.execute(f"INSERT INTO main.{t} ({columns[t]}) SELECT {columns[t]} FROM staged.{t}")
        out[t] = {"rows": rows.rowcount, "seconds": round(time.perf_counter() - at, 2)}
    at = time.perf_counter()
    conn.execute("COMMIT")
    out["commit_seconds"] = round(time.perf_counter() - at, 2)
    out["seconds"] = round(time.perf_counter() - started, 2)
    conn.close()
    (folder / "floor.db").unlink()
    return out


def _postgres_floor(url: str) -> dict[str, Any]:
    """Stage the first tick's rows in `url`'s database, empty enrollment and delivery, write them back."""
    db = Database(url)
    with db.begin() as conn:
        for t in TABLES:
            conn.execute(text(f"DROP TABLE IF EXISTS staged_{t}"))
            conn.execute(text(f"CREATE UNLOGGED TABLE staged_{t} AS SELECT * FROM {t} ORDER BY {ORDER[t]}"))
        conn.execute(text("TRUNCATE enrollment, delivery"))
    db.refresh_statistics(TABLES)  # as after the tick: the tables it grew were analysed
    out: dict[str, Any] = {"settings": "engine"}
    started = time.perf_counter()
    with db.begin() as conn:
        for t in TABLES:
            at = time.perf_counter()
            rows = conn.execute(text(f"INSERT INTO {t} SELECT * FROM staged_{t} ORDER BY {ORDER[t]}"))
            out[t] = {"rows": rows.rowcount, "seconds": round(time.perf_counter() - at, 2)}
        at = time.perf_counter()
    out["commit_seconds"] = round(time.perf_counter() - at, 2)
    out["seconds"] = round(time.perf_counter() - started, 2)
    with db.begin() as conn:
        for t in TABLES:
            conn.execute(text(f"DROP TABLE staged_{t}"))
    db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--postgres-url", default="")
    parser.add_argument("--template", default="", help="PostgreSQL: the database first_tick.py built")
    args = parser.parse_args()
    folder: Path = args.folder
    if args.postgres_url and not args.template:
        parser.error("--template is required with --postgres-url")
    if not (folder / (f"built-{args.template}.json" if args.postgres_url else "built.json")).exists():
        parser.error(f"{folder} holds no built world: run bench/first_tick.py --folder {folder} first")
    url = args.postgres_url or f"sqlite:///{folder / 'bench.db'}"
    tick = _first_tick(folder, url, args.postgres_url, args.template)
    print(f"first tick: {json.dumps(tick)}", flush=True)
    if args.postgres_url:
        print(f"write floor: {json.dumps(_postgres_floor(args.postgres_url))}", flush=True)
        return
    for best in (False, True):
        print(f"write floor: {json.dumps(_sqlite_floor(folder, best))}", flush=True)


if __name__ == "__main__":
    main()
