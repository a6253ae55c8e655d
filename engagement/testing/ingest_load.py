"""The data the ingest benchmarks and the multi-process intake tests load: signed SendGrid event batches
for sent deliveries, and Segment track calls for known contacts, as the providers send them."""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engagement import config
from engagement.ingest import upserts as ingest
from engagement.ingest.records import AccountIn, ContactIn
from engagement.store import migrate, schema
from engagement.store.database import Database
from engagement.testing.api_process import empty

SENT_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FOURTH = ("open", "bounce", "spamreport", "unsubscribe")


def sendgrid_database(url: str, deliveries: int) -> Database:
    """A migrated database with `deliveries` emails sent through SendGrid."""
    db = Database(url)
    empty(db)  # a PostgreSQL database given with --database-url may hold an earlier run
    migrate.upgrade(db)
    add_deliveries(db, deliveries)
    return db


def add_deliveries(db: Database, deliveries: int) -> None:
    """`deliveries` emails sent through SendGrid, each with its X-Message-Id."""
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


def sendgrid_events(deliveries: int, seed: int) -> list[dict[str, Any]]:
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


WRITE_KEY = "wk-bench"
TRACK_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NAMES = (
    "active_day",
    "report_viewed",
    "report_created",
    "dashboard_shared",
    "integration_connected",
    "first_login",
)
CONTACTS, PER_ACCOUNT = 10_000, 5


def segment_database(url: str, contacts: int = CONTACTS) -> Database:
    """A migrated database with the contacts and accounts the events are about."""
    db = Database(url)
    empty(db)  # a PostgreSQL database given with --database-url may hold an earlier run
    migrate.upgrade(db)
    accounts = [
        AccountIn(id=f"acc{i:05d}", name=f"Account {i}", plan="pro", mrr=99)
        for i in range(contacts // PER_ACCOUNT)
    ]
    people = [
        ContactIn(id=f"u{i:06d}", account_id=f"acc{i // PER_ACCOUNT:05d}", email=f"u{i:06d}@example.com")
        for i in range(contacts)
    ]
    with db.begin() as conn:
        ingest.upsert_accounts(db, conn, accounts, config.Touch(), TRACK_START)
        ingest.upsert_contacts(db, conn, people, TRACK_START)
    return db


def track_calls(count: int, seed: int, contacts: int = CONTACTS) -> list[dict[str, Any]]:
    """Track calls as analytics-python sends them."""
    rng = random.Random(seed)
    found = []
    for i in range(count):
        at = TRACK_START + timedelta(seconds=i * 3)
        found.append(
            {
                "type": "track",
                "userId": f"u{rng.randrange(contacts):06d}",
                "event": rng.choice(NAMES),
                "properties": {
                    "report_id": rng.randrange(100_000),
                    "source": "web",
                    "duration_ms": rng.randrange(5000),
                },
                "timestamp": at.isoformat(timespec="milliseconds"),
                "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
                "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
                "integrations": {},
            }
        )
    return found


def segment_batches(found: list[dict[str, Any]], size: int) -> list[bytes]:
    """Each batch as a /v1/batch body."""
    sent_at = datetime.now(UTC).isoformat()
    return [
        json.dumps({"batch": found[start : start + size], "sentAt": sent_at}, separators=(",", ":")).encode()
        for start in range(0, len(found), size)
    ]


SEGMENT_HEADERS = {
    "Content-Type": "application/json",
    "Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
}
