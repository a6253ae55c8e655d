"""100,000 signed SendGrid events ingested through the HTTP API, in batches of 1,000.

Run: .venv/bin/python bench/ingest_sendgrid.py [--events 100000] [--batch 1000] [--concurrency 2] [--workers 2]
     [--database-url postgresql://…]   (default: a fresh SQLite file)

Set-up (not timed): a migrated database with events/4 deliveries `sent` through SendGrid, each with its
X-Message-Id; for each delivery four events as SendGrid posts them (our custom_args echoed at the top
level, sg_message_id, sg_event_id): `delivered`, `open`, `click`, and one of open / bounce / spamreport /
unsubscribe, shuffled, cut into batches, each body signed with a generated P-256 key (ECDSA-SHA256 over
timestamp + body, base64 DER, as SendGrid signs). `engagement serve` runs as its own process (uvicorn).

Timed: every batch POSTed to /webhooks/sendgrid (verify, parse, map to deliveries, insert responses,
advance statuses, suppress addresses; one transaction per request). Target <= 5 s for 100,000.
Afterwards the database must hold exactly one response per event and the expected statuses.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from engagement.store import schema
from engagement.store.database import Database
from engagement.testing.api_process import ApiProcess, bench_arguments, empty, timed_post_all
from engagement.testing.ingest_load import sendgrid_database, sendgrid_events, signed_batches


def main() -> None:
    args = bench_arguments(__doc__, batch=1_000, seed=11)
    deliveries = args.events // 4

    with tempfile.TemporaryDirectory(prefix="bench-sendgrid-") as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'engagement.db'}"
        started = time.perf_counter()
        db = sendgrid_database(url, deliveries)
        found = sendgrid_events(deliveries, args.seed)
        public, batches = signed_batches(found, args.batch)
        size = sum(len(body) for body, _ in batches) / len(batches)
        print(
            f"set-up: {deliveries:,} deliveries, {len(found):,} events in {len(batches)} signed batches "
            f"(mean {size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s"
        )
        config_path = folder / "config.toml"
        config_path.write_text(
            f'[database]\nurl = "{url}"\n[server]\nworkers = {args.workers}\n'
            f'[webhooks.sendgrid]\npublic_key = "{public}"\n'
            f"max_body_bytes = {8 * 1024 * 1024}\n"
        )
        with ApiProcess(config_path) as api:
            answers, timed = timed_post_all(api, "/webhooks/sendgrid", batches, args.concurrency)

        recorded = sum(a["recorded"] for a in answers)
        duplicates = sum(a["duplicates"] for a in answers)
        unknown = sum(a["unknown"] for a in answers)
        print(
            timed.report(
                len(found),
                f"{args.batch:,} a batch, {args.concurrency} connection(s), {args.workers} server process(es), {db.dialect}",
            )
        )
        print(f"answers: recorded {recorded:,}, duplicates {duplicates:,}, unknown {unknown:,}")
        check(db, len(found), deliveries)
        print(f"target <= 5 s: {'met' if timed.seconds <= 5 else 'NOT met'}")
        if args.database_url:
            empty(db)
        db.dispose()


def check(db: Database, count: int, deliveries: int) -> None:
    """One response per event; statuses as the events say; one suppression per bounce/complaint/unsubscribe."""
    d, r, s = schema.deliveries, schema.responses, schema.suppressions
    with db.begin() as conn:
        responses = conn.execute(select(func.count()).select_from(r)).scalar_one()
        statuses = dict(conn.execute(select(d.c.status, func.count()).group_by(d.c.status)).all())
        suppressed = conn.execute(select(func.count()).select_from(s)).scalar_one()
    bounced = len(range(1, deliveries, 4))
    expected = {"delivered": deliveries - bounced, "bounced": bounced}
    print(f"database: {responses:,} responses, statuses {statuses}, {suppressed:,} suppressions")
    assert responses == count, (responses, count)
    assert statuses == expected, (statuses, expected)
    assert suppressed == deliveries - len(range(0, deliveries, 4)), suppressed


if __name__ == "__main__":
    main()
