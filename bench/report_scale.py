"""`engagement report` over 1M deliveries and 3M responses on SQLite (target: ≤ 5 s).

Run: .venv/bin/python bench/report_scale.py [--deliveries 1000000] [--responses-per-delivery 3] [--days 30]

Builds bench/out/report_scale/ (config.toml + engagement.db, migrated with Alembic so the report
indexes are the shipped ones) with rows written by set-based SQL: 200k contacts, 400k enrollments
of the four shipped journeys (10% holdout, 8% converted), deliveries spread over the last 30 days
(every status the funnel counts), three responses per delivery, milestones for time-to-value and
30 daily score snapshots of 20k contacts. Then it times the `engagement report` command itself,
each format in its own process, as a user would run it (default range: the last 30 days).

`--days N` spreads the same rows over the last N days instead (contacts and enrollments scale with
the deliveries, 1 : 5 and 2 : 5) and times `report --since Nd`, for the time per day of data over
long ranges; it prints that figure. The score snapshots stay 30 days of 20k contacts.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engagement import config
from engagement.engine import load_catalog
from engagement.journeys import program
from engagement.store import migrate
from engagement.store.database import Database

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("REPORT_SCALE_DIR", ROOT / "bench" / "out" / "report_scale"))
CONFIG = f"""[database]
url = "sqlite:///engagement.db"
[journeys]
dir = "{ROOT / "journeys"}"
[templates]
dir = "{ROOT / "templates" / "email"}"
[webhooks.csm-alerts]
url = "https://hooks.example.com/services/csm-alerts"
"""
STAMP = "strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000'"


def _steps(settings: config.Settings) -> list[tuple[str, str, str]]:
    """(journey, step, channel) of every message step of the shipped journeys."""
    found = []
    for journey in load_catalog(settings).journeys.values():
        for instr in journey.program:
            if isinstance(instr, program.Message):
                found.append((journey.id, instr.step_id, instr.kind.value))
    return found


def build(deliveries: int, per_delivery: int, now: datetime, days: int = 30) -> Path:
    """A fresh folder with config and a database full of report rows."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    (OUT / "config.toml").write_text(CONFIG)
    settings = config.load(OUT / "config.toml")
    migrate.upgrade(Database(settings.database_url))
    steps = _steps(settings)
    journeys = sorted({j for j, _, _ in steps})
    contacts, enrollments = max(deliveries // 5, 10), max(deliveries * 2 // 5, 10)
    t = int(now.timestamp())
    day = 86_400
    conn = sqlite3.connect(OUT / "engagement.db")
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")
    conn.execute("CREATE TEMP TABLE n(i INTEGER PRIMARY KEY)")
    conn.execute(
        f"INSERT INTO n WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < "
        f"{max(deliveries, enrollments, contacts) - 1}) SELECT i FROM c"
    )
    conn.execute("CREATE TEMP TABLE step(jk INTEGER, idx INTEGER, journey, step, channel, n INTEGER)")
    for jk, journey in enumerate(journeys):
        mine = [(s, c) for j, s, c in steps if j == journey]
        conn.executemany(
            "INSERT INTO step VALUES (?, ?, ?, ?, ?, ?)",
            [(jk, idx, journey, step, channel, len(mine)) for idx, (step, channel) in enumerate(mine)],
        )
    conn.execute("CREATE TEMP TABLE journey(k INTEGER PRIMARY KEY, id)")
    conn.executemany("INSERT INTO journey VALUES (?, ?)", list(enumerate(journeys)))
    conn.execute(
        "INSERT INTO account (id, name, mrr, touch, touch_explicit, signed_up_at, traits) "
        f"SELECT 'a' || i, 'Account ' || i, 100, 'tech', 0, {STAMP.format(seconds=f't - {3 * days} * {day} + i')}, '{{}}' "
        f"FROM n WHERE i < {contacts // 10}".replace("t - ", f"{t} - ")
    )
    conn.execute(
        "INSERT INTO contact (id, account_id, email, first_name, last_name, timezone, created_at, traits) "
        f"SELECT 'c' || i, 'a' || (i % {contacts // 10}), 'c' || i || '@example.com', 'F', 'L', 'UTC', "
        f"{STAMP.format(seconds=f'{t} - (i % {2 * days}) * {day} - (i % 997) * 60')}, '{{}}' FROM n WHERE i < {contacts}"
    )
    conn.execute(
        "INSERT INTO enrollment (id, journey_id, audience, subject_id, account_id, holdout, state, outcome, "
        "entered_at, ended_at) "
        f"SELECT i + 1, (SELECT id FROM journey WHERE k = (i + i / {contacts}) % {len(journeys)}), 'contact', "
        f"'c' || (i % {contacts}), "
        f"'a' || ((i % {contacts}) % {contacts // 10}), i % 10 = 0, "
        "CASE WHEN i % 25 < 2 THEN 'ended' ELSE 'active' END, CASE WHEN i % 25 < 2 THEN 'converted' END, "
        f"{STAMP.format(seconds=f'{t} - (i % {days - 1}) * {day} - (i % 1013) * 30')}, "
        f"CASE WHEN i % 25 < 2 THEN {STAMP.format(seconds=f'{t} - (i % 7) * {day}')} END "
        f"FROM n WHERE i < {enrollments}"
    )
    statuses = (
        "CASE WHEN i % 100 < 88 THEN 'sent' WHEN i % 100 < 92 THEN 'queued' WHEN i % 100 = 92 THEN 'skipped_late' "
        "WHEN i % 100 = 93 THEN 'in_doubt' WHEN i % 100 = 94 THEN 'suppressed' WHEN i % 100 = 95 THEN 'failed' "
        "ELSE 'cancelled' END"
    )
    reasons = (
        "CASE WHEN i % 100 BETWEEN 88 AND 89 THEN 'held: outside the send window' "
        "WHEN i % 100 BETWEEN 90 AND 91 THEN 'held: weekly email cap reached' END"
    )
    holds = (
        "CASE WHEN i % 100 BETWEEN 88 AND 89 THEN 'send_window' "
        "WHEN i % 100 BETWEEN 90 AND 91 THEN 'weekly_cap' END"
    )
    moment = STAMP.format(seconds=f"{t} - (i % {days}) * {day} + 3600 - (i % 3571) * 10")
    # delivery i: enrollment e = i % enrollments, round r = i / enrollments; a step of e's journey
    e, r = f"(i % {enrollments})", f"(i / {enrollments})"
    jk = f"(({e} + {e} / {contacts}) % {len(journeys)})"
    conn.execute(
        "INSERT INTO delivery (id, enrollment_id, journey_id, step_id, channel, recipient, contact_id, status, "
        "status_reason, hold_code, attempts, due_at, created_at, updated_at, sent_at, priority) "
        f"SELECT 'd' || i, {e} + 1, s.journey, s.step, s.channel, 'c' || ({e} % {contacts}) || '/' || {r}, "
        f"'c' || ({e} % {contacts}), {statuses}, {reasons}, {holds}, 1, {moment}, {moment}, {moment}, "
        f"CASE WHEN i % 100 < 88 THEN {moment} END, 0 "
        f"FROM n JOIN step s ON s.jk = {jk} AND s.idx = {r} % s.n WHERE i < {deliveries}"
    )
    email_kinds = (
        "CASE r.j WHEN 0 THEN 'delivered' WHEN 1 THEN 'open' ELSE CASE WHEN d.rowid % 4 = 0 THEN 'click' "
        "WHEN d.rowid % 97 = 0 THEN 'unsubscribe' WHEN d.rowid % 89 = 0 THEN 'spamreport' ELSE 'open' END END"
    )
    app_kinds = (
        "CASE r.j WHEN 0 THEN 'seen' WHEN 1 THEN 'seen' ELSE CASE WHEN d.rowid % 3 = 0 THEN 'clicked' "
        "ELSE 'dismissed' END END"
    )
    conn.execute("CREATE TEMP TABLE r(j INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO r VALUES (?)", [(j,) for j in range(per_delivery)])
    conn.execute(
        "INSERT INTO response (delivery_id, contact_id, journey_id, step_id, kind, occurred_at, simulated, data) "
        f"SELECT d.id, d.contact_id, d.journey_id, d.step_id, "
        f"CASE WHEN d.channel = 'in_app' THEN {app_kinds} ELSE {email_kinds} END, "
        "strftime('%Y-%m-%d %H:%M:%S', d.created_at, '+' || (600 * (r.j + 1)) || ' seconds') || '.000000', 0, '{}' "
        "FROM delivery d CROSS JOIN r"
    )
    conn.execute(
        "INSERT INTO milestone (contact_id, name, account_id, reached_at) "
        f"SELECT 'c' || i, 'first_report_created', 'a' || (i % {contacts // 10}), "
        f"{STAMP.format(seconds=f'{t} - (i % {2 * days}) * {day} + (i % 20) * {day}')} FROM n WHERE i < {contacts} AND i % 10 < 3"
    )
    for back in range(30):
        snapshot_day = (now - timedelta(days=back)).date().isoformat()
        conn.execute(
            "INSERT INTO score_snapshot (day, subject_type, subject_id, value, band) "
            f"SELECT '{snapshot_day}', 'contact', 'c' || i, (i * 7 + {back} * 13) % 100, "
            f"CASE WHEN (i * 7 + {back} * 13) % 100 >= 60 THEN 'green' "
            f"WHEN (i * 7 + {back} * 13) % 100 >= 30 THEN 'yellow' ELSE 'red' END FROM n WHERE i < 20000"
        )
    conn.commit()
    conn.execute("ANALYZE")
    counts = {
        name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        for name in ("contact", "enrollment", "delivery", "response", "milestone", "score_snapshot")
    }
    conn.close()
    print("rows:", ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
    return OUT / "config.toml"


def time_report(config_path: Path, *args: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one `engagement report` process."""
    command = [str(Path(sys.executable).parent / "engagement"), "--config", str(config_path), "report", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _runs(config_path: Path, label: str, *args: str, days: int | None = None) -> None:
    timings = [time_report(config_path, *args) for _ in range(3)]
    walls = ", ".join(f"{w:.2f}" for w, _ in timings)
    cpus = ", ".join(f"{c:.2f}" for _, c in timings)
    per_day = f"; best cpu per day of data {1000 * min(c for _, c in timings) / days:.1f} ms" if days else ""
    print(f"{label}: wall {walls} s; cpu {cpus} s{per_day}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--responses-per-delivery", type=int, default=3)
    parser.add_argument("--days", type=int, default=30, help="spread the rows over this many days (>= 2)")
    parser.add_argument("--reuse", action="store_true", help="time the database built by an earlier run")
    args = parser.parse_args()
    began = time.perf_counter()
    if args.reuse:
        path = OUT / "config.toml"
    else:
        path = build(args.deliveries, args.responses_per_delivery, datetime.now(UTC), args.days)
        print(f"built in {time.perf_counter() - began:.1f} s", flush=True)
    with open("/proc/loadavg") as load:
        print("load average before timing:", load.read().split()[:3], flush=True)
    since = ("--since", f"{args.days}d") if args.days != 30 else ()
    for fmt in ("table", "csv", "json", "html"):
        _runs(
            path,
            f"engagement report --format {fmt} {' '.join(since)}".rstrip(),
            "--format",
            fmt,
            *since,
            days=args.days,
        )
    _runs(
        path,
        "engagement report --journey onboarding-first-report",
        "--journey",
        "onboarding-first-report",
        *since,
    )
    _runs(path, "engagement --help (process start-up alone)", "--help")
    with open("/proc/loadavg") as load:
        print("load average after timing:", load.read().split()[:3], flush=True)


if __name__ == "__main__":
    main()
