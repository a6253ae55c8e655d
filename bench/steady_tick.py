"""The steady tick (nothing new due) of bench/scale.py's world, repeatable, with a per-journey breakdown.

Run: .venv/bin/python bench/steady_tick.py --size 100000 --folder /tmp/steady-100k [--postgres-url URL]
     [--repeat 3] [--minutes 1]

The first run in a folder builds the world exactly as bench/scale.py does (same seed, ten journeys), runs
the first tick at NOW in a child process and, on SQLite, keeps a copy of the database as it stood after
it. Each later run (and each --repeat) starts again from that copy and times the tick `--minutes` later
in a fresh process: total seconds, enrolled/queued counts, peak RSS, and per journey the seconds spent
ending on goal/exit, enrolling and waking waiters (incremental evaluation: engagement/evaluation/incremental.py).
On PostgreSQL the database is built once per run (no copy), and each repeat ticks a minute later.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # bench/ is not a package: scale.py is found by the path above

from engagement import config
from engagement.delivery.recording import CountingEmail, RecordingWebhook
from engagement.engine import Engine
from engagement.evaluation import advance, enroll, tick


def timed_tick(config_path: str, minutes: float) -> None:
    """Child process: one tick `minutes` after NOW, send=False; prints JSON with a per-journey breakdown."""
    engine = Engine(config.load(config_path), email=CountingEmail(), webhooks=RecordingWebhook())
    phases: dict[str, dict[str, float]] = defaultdict(dict)

    def wrap(module: Any, name: str) -> None:
        inner = getattr(module, name)

        def timing(*args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            result = inner(*args, **kw)
            journey = next(a for a in args if hasattr(a, "spec"))
            phases[journey.id][name] = round(time.perf_counter() - started, 4)
            return result

        setattr(module, name, timing)

    for module, name in ((advance, "end_on_goal_and_exit"), (advance, "wake_waiters"), (enroll, "enroll")):
        wrap(module, name)
    started = time.perf_counter()
    report = tick.run(
        engine.db, engine.settings, engine.catalog, engine.renderer, engine.ports,
        scale.NOW + timedelta(minutes=minutes), send=False,
    )  # fmt: skip
    out = {
        "seconds": time.perf_counter() - started,
        "enrolled": report.total("enrolled"),
        "queued": report.total("queued"),
        "peak_rss_mb": scale.peak_rss_mb(),
        "journeys": phases,
    }
    print(json.dumps(out))


def child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _copy(source: Path, target: Path) -> None:
    """Copy a closed SQLite database with its WAL (if one was left), replacing the target's."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--postgres-url", default="")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        timed_tick(args.child[0], float(args.child[1]))
        return
    if args.folder is None:
        parser.error("--folder is required")
    folder: Path = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / "after-first-tick.db"
    url = args.postgres_url or f"sqlite:///{folder / 'bench.db'}"
    cfg = str(scale.write_config(folder, url))
    if args.postgres_url or not kept.exists():
        if args.postgres_url:
            scale.empty_postgres(url)
        else:
            (folder / "bench.db").unlink(missing_ok=True)
        print(f"built: {json.dumps(scale.build(url, args.size))}", flush=True)
        first = scale.child("--tick", cfg, scale.NOW.isoformat())
        print(f"first tick: {json.dumps(first)}", flush=True)
        if not args.postgres_url:
            _copy(folder / "bench.db", kept)
    for i in range(args.repeat):
        minutes = args.minutes
        if args.postgres_url:
            minutes *= i + 1  # no copy to go back to: each repeat is the next steady tick
        else:
            _copy(kept, folder / "bench.db")
        result = child("--child", cfg, str(minutes))
        load = os.getloadavg()[0]
        print(f"steady tick: {json.dumps(result)} load1={load:.2f}", flush=True)


if __name__ == "__main__":
    main()
