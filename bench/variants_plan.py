"""What variants cost the tick that queues a cohort, and what `engagement plan` costs next to a tick.

Run: .venv/bin/python bench/variants_plan.py [--size 20000] [--folder DIR]

Builds one SQLite world of SIZE contacts who all signed up (an email journey, then a wait), three times:
without variants, with two variants, with three weighted ones; times the first tick (send=False), which
enrolls and queues SIZE emails. Then, on the two-variant world, removes the wait step and times
`plan` (its rolled-back evaluation) against the next tick that applies it. Prints one JSON line each:
wall seconds and CPU seconds (user+sys of this process, time.process_time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engagement import config
from engagement.delivery.recording import CountingEmail, RecordingWebhook
from engagement.dryrun import plan as plans
from engagement.engine import Engine, load_catalog
from engagement.evaluation import tick
from engagement.ingest import upserts
from engagement.ingest.records import AccountIn, ContactIn, EventIn
from engagement.store.database import Database
from engagement.store.schema import deliveries as d

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CONFIG = (
    '[database]\nurl = "sqlite:///{db}"\n[journeys]\ndir = "journeys"\n[templates]\ndir = "{templates}"\n'
)
HEAD = "id: welcome\nname: Welcome\nstatus: active\ntrigger: {event: signed_up}\nsteps:\n"
HELLO = (
    '  - id: hello\n    email: {template: onboarding/welcome, subject: "Welcome, {{ contact.first_name }}"}\n'
)
KINDS = {
    "none": "",
    "two": "    variants:\n      - {id: a}\n      - {id: b, subject: B}\n",
    "three_weighted": "    variants:\n      - {id: a}\n      - {id: b, subject: B}\n      - {id: c, subject: C}\n"
    "    weights: {a: 2, b: 1, c: 1}\n",
}
WAIT = (
    "  - id: pause\n    wait: 5d\n  - id: after\n    email: {template: onboarding/stalled, subject: After}\n"
)


def timed(run: Callable[[], Any]) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return {"wall_s": round(time.perf_counter() - wall, 3), "cpu_s": round(time.process_time() - cpu, 3)}


def world(folder: Path, size: int, steps: str) -> config.Settings:
    (folder / "journeys").mkdir(parents=True)
    (folder / "journeys" / "welcome.yaml").write_text(HEAD + steps)
    path = folder / "config.toml"
    path.write_text(CONFIG.format(db=folder / "bench.db", templates=REPO / "templates" / "email"))
    settings = config.load(path)
    db = Database(settings.database_url)
    db.create_all()
    ids = [f"c{i:06d}" for i in range(size)]
    with db.begin() as conn:
        upserts.upsert_accounts(db, conn, [AccountIn(id="acme", name="Acme")], settings.touch, NOW)
        contacts = [ContactIn(id=c, account_id="acme", email=f"{c}@example.com", first_name=c) for c in ids]
        upserts.upsert_contacts(db, conn, contacts, NOW)
        upserts.insert_events(
            db, conn, [EventIn(contact_id=c, name="signed_up", timestamp=NOW) for c in ids], NOW
        )
    db.dispose()
    return settings


def first_tick(running: Engine, at: datetime) -> None:
    """A tick that evaluates and queues but sends nothing."""
    tick.run(running.db, running.settings, running.catalog, running.renderer, running.ports, at, send=False)


def one(root: Path, kind: str, size: int) -> None:
    """Time the first tick of one world; on the two-variant one, then plan and apply a removed step."""
    settings = world(root / kind, size, HELLO + KINDS[kind] + WAIT)
    running = Engine(settings, email=CountingEmail(), webhooks=RecordingWebhook())
    figures = timed(lambda: first_tick(running, NOW))
    with running.db.begin() as conn:
        queued = dict(conn.execute(select(d.c.variant, func.count()).group_by(d.c.variant)).all())
    shares = {str(k): v for k, v in queued.items()}
    print(json.dumps({"what": f"first tick, variants: {kind}", "size": size, "queued": shares, **figures}))
    if kind != "two":
        return
    without_wait = WAIT[WAIT.index("  - id: after") :]
    (root / kind / "journeys" / "welcome.yaml").write_text(HEAD + HELLO + KINDS[kind] + without_wait)
    later = NOW + timedelta(hours=1)
    catalog = load_catalog(settings)
    made: list[plans.Plan] = []
    figures = timed(lambda: made.append(plans.plan(running.db, settings, catalog, later)))
    waiting = [s.waiting for s in made[0].journeys[0].steps]
    print(json.dumps({"what": "plan (a removed step)", "size": size, "moved": waiting, **figures}))
    applying = Engine(settings, email=CountingEmail(), webhooks=RecordingWebhook())
    figures = timed(lambda: first_tick(applying, later))
    print(json.dumps({"what": "the tick that applies it", "size": size, **figures}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="variants-bench-"))
    for kind in KINDS:
        one(root, kind, args.size)


if __name__ == "__main__":
    main()
