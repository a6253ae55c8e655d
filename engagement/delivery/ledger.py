"""The delivery ledger's housekeeping: what was claimed but never confirmed becomes in doubt."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from engagement import vocab
from engagement.store import schema

d = schema.deliveries
IN_DOUBT_REASON = (
    "no confirmation within the sending lease (the sender stopped mid-send); never re-sent automatically"
)


# built once: run at every tick
SWEEP = (
    update(d)
    .where(
        d.c.status == vocab.DeliveryStatus.SENDING,
        d.c.updated_at < bindparam("before", type_=d.c.updated_at.type),
    )
    .values(
        status=vocab.DeliveryStatus.IN_DOUBT,
        status_reason=IN_DOUBT_REASON,
        updated_at=bindparam("now", type_=d.c.updated_at.type),
    )
)


def sweep(conn: Connection, now: datetime, lease: timedelta) -> int:
    """Mark `sending` rows older than the lease `in_doubt`; return how many."""
    result = conn.execute(SWEEP, {"now": now, "before": now - lease})
    return int(result.rowcount or 0)


def in_doubt(conn: Connection, limit: int = 1000) -> list[Any]:
    """Deliveries in doubt, oldest first (for `engagement deliveries --in-doubt`)."""
    return list(
        conn.execute(
            select(d)
            .where(d.c.status == vocab.DeliveryStatus.IN_DOUBT)
            .order_by(d.c.updated_at, d.c.id)
            .limit(limit)
        ).all()
    )
