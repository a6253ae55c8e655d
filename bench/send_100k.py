"""100,000 personalized emails rendered and accepted by the local SendGrid-compatible server.

Run: .venv/bin/python bench/send_100k.py [--count 100000] [--in-flight 1000] [--connections 8]
                                          [--engine-only] [--profile FILE]

(a) render + payload, no network: for every contact, the template context, the shipped onboarding/welcome
    email rendered with its own first name and company (subject, HTML with inlined CSS, text, signed
    unsubscribe link) by `Renderer.email` via dispatch's own `_email`, then the SendGrid v3 JSON body
    (`sendgrid.payload` + `json.dumps`, as `SendgridEmail.send` encodes it). Target >= 5,000 messages/s.
(b) end to end: a fresh SQLite file with `--count` contacts, one active journey whose single step is that
    email, and `--count` deliveries queued by a tick while the provider was paused (not timed). Then one
    timed tick through the real engine (claim `limits.in_flight` deliveries, commit them `sending`, render
    each and hand it to `SendgridEmail`'s sender threads, which POST it over `--connections` keep-alive
    connections while the next is rendered, commit the batch `sent`) against the server in its own process
    (uvicorn with httptools and uvloop, committing a ledger row per request). Target <= 20 s for 100,000.
    Afterwards the server's ledger must show every delivery accepted once and the database every one `sent`.
    Printed with it: CPU seconds of the engine process and of the server process, and the load average.
(c) with --engine-only: the same tick on a fresh copy with a counting provider instead of SendGrid (claim,
    render, ledger writes; no HTTP, no server), for the CPU split.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import func, select

from engagement import config
from engagement.clock import SystemClock
from engagement.delivery import dispatch
from engagement.delivery.recording import CountingEmail, RecordingEmail, RecordingWebhook
from engagement.delivery.sendgrid import SendgridEmail, payload
from engagement.engine import Engine
from engagement.store import migrate, schema
from engagement.store.database import Database
from engagement.testing import welcome_world
from engagement.testing.sendgrid_server import SendgridProcess

PER_ACCOUNT = 5


def render_rate(settings: config.Settings, count: int) -> tuple[float, float, int]:
    """(a): messages/s for context + render + SendGrid JSON, CPU µs a message, and the last body's size."""
    engine = Engine(
        settings, database=Database("sqlite://"), email=RecordingEmail(), webhooks=RecordingWebhook()
    )
    journey = engine.catalog.journeys[welcome_world.JOURNEY_ID]
    instr = journey.step("welcome")
    assert instr is not None
    accounts, contacts = welcome_world.people(count, per_account=PER_ACCOUNT)
    by_id = {a["id"]: a for a in accounts}
    now = SystemClock().now()
    size = 0
    cpu, started = cpu_seconds(None), time.perf_counter()
    for contact in contacts:
        row = SimpleNamespace(id=f"d{contact['id']}", journey_id=journey.id, step_id="welcome")
        context = dispatch._context(settings, journey, row, contact, by_id[contact["account_id"]])
        email = dispatch._email(settings, engine.renderer, instr, row, contact, context, now)
        size = len(json.dumps(payload(email), separators=(",", ":")).encode())
    seconds = time.perf_counter() - started
    return count / seconds, (cpu_seconds(None) - cpu) / count * 1e6, size


def build(settings: config.Settings, count: int) -> Database:
    """A migrated database with `count` queued welcome emails (the tick runs with the provider paused)."""
    db = Database(settings.database_url)
    migrate.upgrade(db)
    _, report = welcome_world.queue(settings, db, count, per_account=PER_ACCOUNT)
    assert report.total("queued") == count, report
    return db


def statuses(db: Database) -> dict[str, int]:
    d = schema.deliveries
    with db.begin() as conn:
        return dict(conn.execute(select(d.c.status, func.count()).group_by(d.c.status)).all())


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of this process (None) or of process `pid`."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=1000, help="limits.in_flight for the timed tick")
    parser.add_argument(
        "--connections", type=int, default=8, help="email.sendgrid.connections: requests in flight at once"
    )
    parser.add_argument("--profile", help="write a cProfile of the timed tick here")
    parser.add_argument(
        "--engine-only", action="store_true", help="also time (c): the same tick with a counting provider"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="send-100k-") as tmp:
        folder = Path(tmp)
        with SendgridProcess(folder / "sendgrid.db", keep=1) as server:
            config_path = welcome_world.write(
                folder, api_url=server.url, api_key=server.api_key, in_flight=args.in_flight
            )
            settings = config.load(config_path)

            rate, cpu, size = render_rate(settings, args.count)
            met = "met" if rate >= 5000 else "NOT met"
            print(f"(a) render + payload: {args.count:,} messages at {rate:,.0f} messages/s, CPU {cpu:.0f} µs a "
                  f"message (target >= 5,000/s: {met}); body {size:,} B", flush=True)  # fmt: skip

            started = time.perf_counter()
            db = build(settings, args.count)
            print(f"    set-up (contacts + enrolling tick, not timed): {time.perf_counter() - started:.1f} s",
                  flush=True)  # fmt: skip

            sendgrid = SendgridEmail.from_settings(settings, max_connections=args.connections)
            engine = Engine(settings, database=db, email=sendgrid)
            profiler = cProfile.Profile() if args.profile else None
            load = os.getloadavg()
            engine_cpu, server_cpu = cpu_seconds(None), cpu_seconds(server.pid)
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            report = engine.tick()
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            seconds = time.perf_counter() - started
            engine_cpu, server_cpu = cpu_seconds(None) - engine_cpu, cpu_seconds(server.pid) - server_cpu
            sendgrid.close()
            counts = server.ledger.counts()
        found = statuses(db)
        db.dispose()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        verdict = "met" if seconds <= 20 * args.count / 100_000 else "NOT met"
        print(f"(b) end to end: {report.dispatched.sent:,} sent in {seconds:.1f} s = {args.count / seconds:,.0f} "
              f"messages/s (target <= 20 s for 100,000: {verdict})")  # fmt: skip
        print(f"    CPU: engine process {engine_cpu:.1f} s ({engine_cpu / args.count * 1e6:.0f} µs a message), "
              f"server process {server_cpu:.1f} s ({server_cpu / args.count * 1e6:.0f} µs a message); "
              f"load average before the timed tick {load[0]:.2f} (2 cores: above ~1 means other work shared them)")  # fmt: skip
        print(
            f"    server ledger: {counts}; database: {dict(Counter(found))}; peak RSS {peak:.0f} MB",
            flush=True,
        )
        if args.engine_only:
            (folder / "engagement.db").unlink()
            local = build(settings, args.count)
            counting = Engine(settings, database=local, email=CountingEmail(), webhooks=RecordingWebhook())
            before, started = cpu_seconds(None), time.perf_counter()
            counting.tick()
            alone = time.perf_counter() - started
            print(f"(c) the same tick with a counting provider (claim, render, ledger writes; no HTTP): "
                  f"{alone:.1f} s = {args.count / alone:,.0f} messages/s, CPU "
                  f"{(cpu_seconds(None) - before) / args.count * 1e6:.0f} µs a message")  # fmt: skip
            local.dispose()
    assert counts.duplicates == 0 and counts.accepted == args.count == counts.delivery_ids
    assert found == {"sent": args.count}


if __name__ == "__main__":
    main()
