"""`surveys.min_interval`: which contacts were asked a survey of a kind recently (then `skipped_recent`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from engagement import vocab
from engagement.store import schema

d = schema.deliveries
ASKED = (
    vocab.DeliveryStatus.SENDING,
    vocab.DeliveryStatus.SENT,
    vocab.DeliveryStatus.DELIVERED,
    vocab.DeliveryStatus.DEFERRED,
    vocab.DeliveryStatus.IN_DOUBT,
)  # surveys that reached the contact, or may have


def recent(conn: Connection, rows: Sequence[Any], now: datetime, interval: timedelta) -> set[tuple[str, str]]:
    """(contact id, survey kind) of these survey deliveries' contacts asked that kind within `interval`."""
    contacts = sorted({r.contact_id for r in rows if r.contact_id})
    found: set[tuple[str, str]] = set()
    when = func.coalesce(d.c.sent_at, d.c.updated_at)
    for start in range(0, len(contacts), 500):
        stmt = select(d.c.contact_id, d.c.survey_kind).where(
            d.c.contact_id.in_(contacts[start : start + 500]),
            d.c.survey_kind.is_not(None),
            d.c.status.in_(ASKED),
            when > now - interval,
        )
        found.update((contact, kind) for contact, kind in conn.execute(stmt.distinct()))
    return found
