"""A provider's rate-limit pause, kept in the database so every worker and every restart honours it.

Both instants are on the engine's clock (the one that moves while a tick runs), never the provider's wall
clock: `paused_until` is when the pause ends, `updated_at` when it was heard.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select

from engagement.store import schema
from engagement.store.database import Database

p = schema.provider_pauses
STORED = select(p.c.paused_until, p.c.updated_at).where(p.c.provider == bindparam("provider"))  # every claim


def until(conn: Connection, provider: str) -> datetime | None:
    """When `provider` may be called again (None when it never asked us to wait)."""
    return conn.execute(select(p.c.paused_until).where(p.c.provider == provider)).scalar_one_or_none()


def stored(conn: Connection, provider: str) -> tuple[datetime, datetime] | None:
    """The shared pause of `provider` as (until, heard at), if there is one."""
    row = conn.execute(STORED, {"provider": provider}).first()
    if row is None:
        return None
    return row.paused_until, row.updated_at or row.paused_until


def clear(conn: Connection, provider: str, at: datetime) -> None:
    """Forget `provider`'s pause if it has ended by `at` (a later one, just stored by another worker, stays)."""
    conn.execute(delete(p).where(p.c.provider == provider, p.c.paused_until <= at))


def hold(db: Database, conn: Connection, provider: str, paused_until: datetime, now: datetime) -> None:
    """Record that `provider` asked at `now` for a pause until `paused_until`; a later pause wins, never an
    earlier."""
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
