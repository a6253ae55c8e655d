"""Record what email providers tell us happened to our messages: responses, delivery status, suppressions.

Applying the same events again, in any order, leaves the same state: responses are unique per
provider event id and per (message, event, timestamp); a delivery's status only moves forward;
each address keeps one suppression. A suppression lifted by hand stays lifted against events from
before the removal. An event for an erased contact keeps no personal data: its response has no
payload, its delivery's status no reason text, its suppression only the address's hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, bindparam, case, select, update

from engagement import vocab
from engagement.delivery import suppression
from engagement.store import schema
from engagement.store.database import Database, among

d = schema.deliveries
# how far along a delivery is; a status only moves to a higher rank (a bounce wins over delivered)
RANK = {
    vocab.DeliveryStatus.DEFERRED: 1,
    vocab.DeliveryStatus.DELIVERED: 2,
    vocab.DeliveryStatus.DROPPED: 3,
    vocab.DeliveryStatus.BOUNCED: 4,
}
# messages that went, or may have gone, to the provider rank from 0; any other status (queued,
# suppressed, cancelled…) ranks above everything, so no provider event can move it
PROGRESS = {
    vocab.DeliveryStatus.SENDING: 0,
    vocab.DeliveryStatus.SENT: 0,
    vocab.DeliveryStatus.IN_DOUBT: 0,
    vocab.DeliveryStatus.FAILED: 0,
    **RANK,
}
NEVER_SENT = 100
# when one batch gives an address several reasons, keep the strongest (so the order never matters)
STRENGTH = {"complaint": 3, "bounce": 2, "unsubscribe": 1}
UNSUBSCRIBING = (vocab.ResponseKind.UNSUBSCRIBE, vocab.ResponseKind.GROUP_UNSUBSCRIBE)
CHUNK = 500


@dataclass(frozen=True)
class EmailEvent:
    """A provider event in our vocabulary: what happened to which message, and what it implies."""

    provider: str
    kind: vocab.ResponseKind
    occurred_at: datetime
    delivery_id: str | None  # from our custom_args
    message_id: str | None  # the provider's X-Message-Id, when there are no custom_args
    email: str | None
    status: vocab.DeliveryStatus
    suppress: str | None  # suppression reason for the address, if any
    occurrence: str  # event and timestamp (and link): with the message, retries under a new event id match
    provider_event_id: str | None
    data: dict[str, Any]

    def dedupe_key(self, delivery_id: str) -> str:
        """The response's key: (message, event, timestamp), however the message was identified."""
        return f"{self.provider}:{delivery_id}:{self.occurrence}"


@dataclass
class Recorded:
    """What one webhook request did."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0
    ignored: int = 0
    suppressed: int = 0
    new_responses: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The counts, for the webhook's answer."""
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


def record(
    db: Database, conn: Connection, events: Sequence[EmailEvent], now: datetime, *, ignored: int = 0
) -> Recorded:
    """Apply a batch of provider events; events for messages we never sent are counted as unknown."""
    result = Recorded(received=len(events) + ignored, ignored=ignored)
    found = _deliveries(conn, events)
    mapped: list[tuple[EmailEvent, Any]] = []
    for event in events:
        row = found.get(event.delivery_id or "") or found.get(f"msg:{event.message_id}")
        if row is None:
            result.unknown += 1
        else:
            mapped.append((event, row))
    erased = _erased(conn, mapped)
    # in key order, so concurrent requests for the same events take their rows' locks in one order (no deadlock)
    rows = sorted(_unrecorded(conn, _responses(mapped, erased)), key=itemgetter("dedupe_key"))
    result.recorded = db.insert_ignore(conn, schema.responses, rows, None)
    result.new_responses = rows
    result.duplicates = len(mapped) - result.recorded
    _advance(db, conn, mapped, now, erased)
    lifted = suppression.removed_since(
        conn, [suppression.address_hash(e.email) for e in events if e.suppress and e.email]
    )
    hidden = {suppression.address_hash(e.email) for e, row in mapped if e.email and row.contact_id in erased}
    result.suppressed = _suppress(db, conn, [e for e in events if not _overruled(e, lifted)], now, hidden)
    _unsubscribe(conn, [(e, row) for e, row in mapped if not _overruled(e, lifted)], now)
    return result


def _erased(conn: Connection, mapped: Sequence[tuple[EmailEvent, Any]]) -> set[str]:
    """The erased contacts among these events' recipients (served by the partial index of erased contacts)."""
    c = schema.contacts
    ids = sorted({row.contact_id for _, row in mapped if row.contact_id})
    found: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found.update(
            conn.execute(
                select(c.c.id).where(among(conn, c.c.id, chunk), c.c.erased_at.is_not(None))
            ).scalars()
        )
    return found


def _overruled(event: EmailEvent, lifted: dict[str, datetime]) -> bool:
    """Whether a manual removal of the event's address came after the event (so it must not suppress again)."""
    if not event.suppress or not event.email:
        return False
    removed = lifted.get(suppression.address_hash(event.email))
    return removed is not None and event.occurred_at <= removed


COLUMNS = (d.c.id, d.c.contact_id, d.c.journey_id, d.c.step_id, d.c.provider_message_id, d.c.status)


def by_message_id(conn: Connection, message_ids: Sequence[str]) -> Any:
    """SELECT of the deliveries with these provider message ids (served by the partial provider-id index)."""
    return select(*COLUMNS).where(among(conn, d.c.provider_message_id, message_ids))


def _deliveries(conn: Connection, events: Sequence[EmailEvent]) -> dict[str, Any]:
    """Deliveries by our id, and by `msg:` + the provider's message id."""
    ids = sorted({e.delivery_id for e in events if e.delivery_id})
    found: dict[str, Any] = {}
    for start in range(0, len(ids), CHUNK):
        for row in conn.execute(select(*COLUMNS).where(among(conn, d.c.id, ids[start : start + CHUNK]))):
            found[row.id] = row
    # the provider's id is the fallback: no custom_args, or an id we do not know
    message_ids = sorted({e.message_id for e in events if e.message_id and e.delivery_id not in found})
    for start in range(0, len(message_ids), CHUNK):
        for row in conn.execute(by_message_id(conn, message_ids[start : start + CHUNK])):
            found[f"msg:{row.provider_message_id}"] = row
    return found


def _responses(mapped: Sequence[tuple[EmailEvent, Any]], erased: set[str]) -> list[dict[str, Any]]:
    """One response row per event, a repeat within the batch (by either key) left out."""
    rows: list[dict[str, Any]] = []
    keys: set[str] = set()
    event_ids: set[str] = set()
    for event, delivery in mapped:
        dedupe_key = event.dedupe_key(delivery.id)
        if dedupe_key in keys or event.provider_event_id in event_ids:
            continue
        keys.add(dedupe_key)
        if event.provider_event_id:
            event_ids.add(event.provider_event_id)
        rows.append(
            {
                "delivery_id": delivery.id,
                "contact_id": delivery.contact_id,
                "journey_id": delivery.journey_id,
                "step_id": delivery.step_id,
                "kind": event.kind,
                "occurred_at": event.occurred_at,
                "dedupe_key": dedupe_key,
                "provider_event_id": event.provider_event_id,
                "simulated": False,
                "data": {} if delivery.contact_id in erased else event.data,
            }
        )
    return rows


def _unrecorded(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose keys are not in the table yet (the insert still ignores any that race in)."""
    r = schema.responses
    seen: dict[str, set[str]] = {}
    for column in (r.c.dedupe_key, r.c.provider_event_id):
        keys = sorted({row[column.name] for row in rows if row[column.name]})
        found = seen[column.name] = set()
        for start in range(0, len(keys), CHUNK):
            found.update(
                conn.execute(select(column).where(among(conn, column, keys[start : start + CHUNK]))).scalars()
            )
    return [
        row
        for row in rows
        if row["dedupe_key"] not in seen["dedupe_key"]
        and row["provider_event_id"] not in seen["provider_event_id"]
    ]


def _advance(
    db: Database, conn: Connection, mapped: Sequence[tuple[EmailEvent, Any]], now: datetime, erased: set[str]
) -> None:
    """Move each delivery to the furthest status its events show, never back."""
    best: dict[str, EmailEvent] = {}
    bare: set[str] = set()  # deliveries of erased contacts: the reason text may hold the address
    for event, delivery in mapped:
        if delivery.contact_id in erased:
            bare.add(delivery.id)
        if PROGRESS.get(delivery.status, NEVER_SENT) >= RANK[event.status]:
            continue  # already there (the UPDATE below checks again, against concurrent requests)
        held = best.get(delivery.id)
        if held is None or _order(event) > _order(held):
            best[delivery.id] = event
    if not best:
        return
    rank = case(PROGRESS, value=d.c.status, else_=NEVER_SENT)
    stmt = (
        update(d)
        .where(d.c.id == bindparam("_id"), rank < bindparam("_rank"))
        .values(status=bindparam("_status"), status_reason=bindparam("_reason"), updated_at=now)
    )
    params = [
        {
            "_id": delivery_id,
            "_rank": RANK[event.status],
            "_status": event.status,
            "_reason": _reason(event, bare=delivery_id in bare),
        }
        for delivery_id, event in sorted(best.items())
    ]
    db.executemany(conn, stmt, params)


def _order(event: EmailEvent) -> tuple[int, datetime, str]:
    # ties broken by time and key, so the same events in any order pick the same one
    return (RANK[event.status], event.occurred_at, event.occurrence)


def _reason(event: EmailEvent, *, bare: bool = False) -> str | None:
    if event.status not in (
        vocab.DeliveryStatus.BOUNCED,
        vocab.DeliveryStatus.DROPPED,
        vocab.DeliveryStatus.DEFERRED,
    ):
        return None
    if bare:  # an erased contact's: the provider's text may name the address
        return event.kind
    text = " ".join(str(event.data[k]) for k in ("type", "status", "reason") if event.data.get(k))
    return f"{event.kind}: {text}"[:1000] if text else event.kind


def _suppress(
    db: Database,
    conn: Connection,
    events: Sequence[EmailEvent],
    now: datetime,
    hidden: set[str],
) -> int:
    """Suppress every address an event says must not be mailed again (known message or not).

    Addresses whose hash is in `hidden` (erased contacts') are kept as the hash alone.
    """
    strongest: dict[str, dict[str, Any]] = {}
    for event in events:
        email = event.email
        if not event.suppress or not email:
            continue
        key = suppression.address_hash(email)
        held = strongest.get(key)
        source = f"webhook:{event.kind}"
        if held is None or (STRENGTH[event.suppress], source) > (STRENGTH[held["reason"]], held["source"]):
            strongest[key] = {
                "email_hash": key,
                "email": None if key in hidden else email.strip().lower(),
                "reason": event.suppress,
                "source": source,
                "created_at": now,
            }
    rows = [strongest[key] for key in sorted(strongest)]
    return db.insert_ignore(conn, schema.suppressions, rows, ["email_hash"]) if rows else 0


def _unsubscribe(conn: Connection, mapped: Sequence[tuple[EmailEvent, Any]], now: datetime) -> None:
    """Mark the contacts who unsubscribed through the provider, as the unsubscribe link does."""
    first: dict[str, datetime] = {}
    for event, delivery in mapped:
        if event.kind in UNSUBSCRIBING and delivery.contact_id:
            at = min(first.get(delivery.contact_id, event.occurred_at), event.occurred_at)
            first[delivery.contact_id] = at
    if not first:
        return
    c = schema.contacts
    conn.execute(
        update(c)
        .where(c.c.id == bindparam("_id"), c.c.unsubscribed_at.is_(None))
        .values(unsubscribed_at=bindparam("_at"), updated_at=now),
        [{"_id": cid, "_at": at} for cid, at in sorted(first.items())],
    )
