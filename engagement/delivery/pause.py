"""A provider's rate-limit pause, kept in the database so every worker and every restart honours it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from engagement.store import schema
from engagement.store.database import Database

p = schema.provider_pauses


def until(conn: Connection, provider: str) -> datetime | None:
    """When `provider` may be called again (None when it never asked us to wait)."""
    return conn.execute(select(p.c.paused_until).where(p.c.provider == provider)).scalar_one_or_none()


def hold(db: Database, conn: Connection, provider: str, paused_until: datetime, now: datetime) -> None:
    """Record that `provider` asked for a pause until `paused_until`; a later pause wins, never an earlier."""
    row = {
        "provider": provider,
        "paused_until": paused_until,
        "reason": "rate limited (429)",
        "updated_at": now,
    }
    db.upsert(
        conn,
        p,
        [row],
        ["provider"],
        {
            "paused_until": lambda new: db.greatest(p.c.paused_until, new.paused_until),
            "reason": lambda new: new.reason,
            "updated_at": lambda new: new.updated_at,
        },
    )


def merged(memory: datetime | None, stored: datetime | None) -> datetime | None:
    """The later of this process's pause and the shared one."""
    known = [t for t in (memory, stored) if t is not None]
    return max(known) if known else None
