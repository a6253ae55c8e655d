"""The first tick from a kept copy, phase by phase, repeated (for A/B runs of first-tick changes).

Run: .venv/bin/python bench/first_tick.py --size 100000 --folder DIR [--repeat 3]
     [--postgres-url postgresql://…/engagement_ft --template engagement_ftbuilt]

Builds scale.py's world once (kept: `built.db` in DIR on SQLite; on PostgreSQL the template database
named by --template, which the URL's role must be allowed to create databases from), then for each
repeat starts from a fresh copy of it and times the first tick at scale.NOW in a child process
(send=False), split into phases by wrapping the functions the tick calls: crediting scores, ending on
goal/exit, enrolling, waking waiters, advancing, the incremental bookkeeping, and the rest (commits,
journey sync, start-up). Prints one JSON line per repeat. `--rebuild` builds again. `--stepwise` turns
off enroll.first_moves, so every enrollment is inserted at its first step and advanced (for A/B runs).
`--cache-mb N` sets SQLite's page cache of the tick's connections to N MB (default: SQLite's 2 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # bench/ is not a package: scale.py is found by the path above
import steady_tick
from sqlalchemy import event, text

from engagement import config
from engagement.delivery.recording import CountingEmail, RecordingWebhook
from engagement.engine import Engine
from engagement.evaluation import advance, enroll, incremental, tick
from engagement.scores import scoring
from engagement.store.database import Database

PHASES = (
    (scoring, "credit"),
    (advance, "end_on_goal_and_exit"),
    (enroll, "enroll"),
    (advance, "wake_waiters"),
    (advance, "advance_batch"),
    (incremental, "plan"),
    (incremental, "record"),
    (incremental, "prune"),
)


def timed_first_tick(config_path: str, stepwise: bool, cache_mb: int) -> None:
    """Child process: the first tick at scale.NOW with send=False; prints JSON with seconds per phase."""
    if stepwise:
        enroll.first_moves = lambda journey, now: None
    engine = Engine(config.load(config_path), email=CountingEmail(), webhooks=RecordingWebhook())
    if cache_mb and engine.db.dialect == "sqlite":

        def cache(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")

        event.listen(engine.db.engine, "connect", cache)
    phases: dict[str, float] = defaultdict(float)

    def wrap(module: Any, name: str) -> None:
        inner = getattr(module, name)

        def timing(*args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kw)
            finally:
                phases[name] += time.perf_counter() - started

        setattr(module, name, timing)

    for module, name in PHASES:
        wrap(module, name)
    started = time.perf_counter()
    report = tick.run(
        engine.db, engine.settings, engine.catalog, engine.renderer, engine.ports, scale.NOW, send=False
    )
    seconds = time.perf_counter() - started
    out = {
        "seconds": round(seconds, 2),
        "enrolled": report.total("enrolled"),
        "queued": report.total("queued"),
        "peak_rss_mb": round(scale.peak_rss_mb()),
        "phases": {name: round(s, 2) for name, s in phases.items()},
        "rest": round(seconds - sum(phases.values()), 2),
    }
    print(json.dumps(out))


def _admin(url: str) -> Database:
    """A connection to the server's `postgres` database, for creating and dropping databases."""
    return Database(url.rsplit("/", 1)[0] + "/postgres")


def _pg_copy(url: str, template: str) -> None:
    """Replace the database named by `url` with a fresh copy of `template`."""
    name = url.rsplit("/", 1)[1]
    admin = _admin(url)
    with admin.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, required=False)
    parser.add_argument("--postgres-url", default="")
    parser.add_argument("--template", default="", help="PostgreSQL: the database the world is built in")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--stepwise", action="store_true")
    parser.add_argument("--cache-mb", type=int, default=0)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        timed_first_tick(args.child, args.stepwise, args.cache_mb)
        return
    if args.folder is None:
        parser.error("--folder is required")
    if args.postgres_url and not args.template:
        parser.error("--template is required with --postgres-url")
    folder: Path = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    if args.postgres_url:
        url = args.postgres_url
        built_url = url.rsplit("/", 1)[0] + "/" + args.template
        marker = folder / f"built-{args.template}.json"
    else:
        url = f"sqlite:///{folder / 'bench.db'}"
        built_url = f"sqlite:///{folder / 'built.db'}"
        marker = folder / "built.json"
    if args.rebuild or not marker.exists():
        if args.postgres_url:
            scale.empty_postgres(built_url)
        else:
            (folder / "built.db").unlink(missing_ok=True)
        built = scale.build(built_url, args.size)
        marker.write_text(json.dumps(built))
        print(f"built: {json.dumps(built)}", flush=True)
    cfg = str(scale.write_config(folder, url))
    for _ in range(args.repeat):
        if args.postgres_url:
            _pg_copy(url, args.template)
        else:
            steady_tick._copy(folder / "built.db", folder / "bench.db")
        out = subprocess.run(
            [sys.executable, __file__, "--child", cfg, "--cache-mb", str(args.cache_mb)]
            + (["--stepwise"] if args.stepwise else []),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"first tick: {json.dumps(result)} load1={os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
