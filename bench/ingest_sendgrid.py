"""100,000 signed SendGrid events ingested through the HTTP API, in batches of 1,000.

Run: .venv/bin/python bench/ingest_sendgrid.py [--events 100000] [--batch 1000] [--concurrency 1]
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

import base64
import json
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from engagement.store import migrate, schema
from engagement.store.database import Database
from engagement.testing.api_process import ApiProcess, bench_arguments, empty, timed_post_all

SENT_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FOURTH = ("open", "bounce", "spamreport", "unsubscribe")


def build(url: str, deliveries: int) -> Database:
    """A migrated database with `deliveries` emails sent through SendGrid."""
    db = Database(url)
    empty(db)  # a PostgreSQL database given with --database-url may hold an earlier run
    migrate.upgrade(db)
    rows = [
        {
            "id": f"dlv-{i:07d}",
            "enrollment_id": i,
            "journey_id": "welcome",
            "step_id": "hello",
            "channel": "email",
            "recipient": f"c{i:07d}",
            "contact_id": f"c{i:07d}",
            "status": "sent",
            "provider": "sendgrid",
            "provider_message_id": f"SGmsg{i:07d}x",
            "due_at": SENT_AT,
            "created_at": SENT_AT,
            "sent_at": SENT_AT,
        }
        for i in range(deliveries)
    ]
    with db.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(schema.deliveries.insert(), rows[start : start + 5000])
    return db


def events(deliveries: int, seed: int) -> list[dict[str, Any]]:
    """Four SendGrid events per delivery, shuffled."""
    rng = random.Random(seed)
    at = int(SENT_AT.timestamp())
    found: list[dict[str, Any]] = []
    for i in range(deliveries):
        common = {
            "email": f"c{i:07d}@example.com",
            "sg_message_id": f"SGmsg{i:07d}x.filterdrecv-5645d9c87f-6r2ch-1-{i:X}-1.0",
            "smtp-id": f"<SGmsg{i:07d}x@ismtpd0001p1iad1.sendgrid.net>",
            "category": ["onboarding"],
            "delivery_id": f"dlv-{i:07d}",
            "journey_id": "welcome",
            "step_id": "hello",
        }
        kinds = ["delivered", "open", "click", FOURTH[i % 4]]
        for n, kind in enumerate(kinds):
            event = {**common, "event": kind, "timestamp": at + 10 + 60 * n, "sg_event_id": f"ev-{i}-{n}"}
            if kind == "click":
                event["url"] = "https://app.chartwell.example/reports/new?utm_source=email"
            if kind in ("open", "click"):
                event.update(useragent="Mozilla/5.0", ip="203.0.113.7", sg_machine_open=False)
            if kind == "bounce":
                event.update(
                    type="bounce", reason="550 5.1.1 The email account does not exist", status="5.1.1"
                )
            found.append(event)
    rng.shuffle(found)
    return found


def signed_batches(found: list[dict[str, Any]], size: int) -> tuple[str, list[tuple[bytes, dict[str, str]]]]:
    """The public key (base64 DER) and each batch's body with SendGrid's signature headers."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    timestamp = str(int(time.time()))
    batches = []
    for start in range(0, len(found), size):
        body = json.dumps(found[start : start + size], separators=(",", ":")).encode() + b"\r\n"
        signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
        batches.append((body, headers))
    return base64.b64encode(public).decode(), batches


def main() -> None:
    args = bench_arguments(__doc__, batch=1_000, seed=11)
    deliveries = args.events // 4

    with tempfile.TemporaryDirectory(prefix="bench-sendgrid-") as tmp:
        folder = Path(tmp)
        url = args.database_url or f"sqlite:///{folder / 'engagement.db'}"
        started = time.perf_counter()
        db = build(url, deliveries)
        found = events(deliveries, args.seed)
        public, batches = signed_batches(found, args.batch)
        size = sum(len(body) for body, _ in batches) / len(batches)
        print(
            f"set-up: {deliveries:,} deliveries, {len(found):,} events in {len(batches)} signed batches "
            f"(mean {size / 1024:.0f} KiB) in {time.perf_counter() - started:.1f} s"
        )
        config_path = folder / "config.toml"
        config_path.write_text(
            f'[database]\nurl = "{url}"\n[webhooks.sendgrid]\npublic_key = "{public}"\n'
            f"max_body_bytes = {8 * 1024 * 1024}\n"
        )
        with ApiProcess(config_path) as api:
            answers, timed = timed_post_all(api, "/webhooks/sendgrid", batches, args.concurrency)

        recorded = sum(a["recorded"] for a in answers)
        duplicates = sum(a["duplicates"] for a in answers)
        unknown = sum(a["unknown"] for a in answers)
        print(
            timed.report(
                len(found), f"{args.batch:,} a batch, {args.concurrency} connection(s), {db.dialect}"
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
