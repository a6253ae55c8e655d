"""The login throttle: attempts per key (a user name, a client address) in a fixed window, in the database.

An attempt is counted before its password is checked, in one atomic upsert per key, so parallel guesses
and several server processes share one count; past the limit the password is not checked at all. The
window runs on the app's clock. A successful login clears its user name's count (not its address's: one
account of one's own must not reset a count of guesses at others).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from engagement.store import schema
from engagement.store.database import Database

t = schema.login_throttles


def user_key(name: str) -> str:
    """The throttle key of a user name (hashed: any length, nothing personal stored)."""
    return "user:" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()


def address_key(address: str) -> str:
    """The throttle key of a client address."""
    return "address:" + address[:200]


def take(
    db: Database, limits: Sequence[tuple[str, int]], window: timedelta, now: datetime
) -> timedelta | None:
    """Count one attempt against each (key, limit); None when all are within their limits, else how long
    until the fullest window ends."""
    cutoff = now - window
    insert: Any = sqlite.insert if db.dialect == "sqlite" else postgresql.insert
    wait: timedelta | None = None
    with db.begin() as conn:
        conn.execute(delete(t).where(t.c.window_start <= cutoff))  # windows that have passed start again
        for key, limit in sorted(limits):  # one order, so concurrent attempts never deadlock
            stmt = insert(t).values(key=key, attempts=1, window_start=now)
            stmt = stmt.on_conflict_do_update(
                index_elements=["key"], set_={"attempts": t.c.attempts + 1}
            ).returning(t.c.attempts, t.c.window_start)
            attempts, started = conn.execute(stmt).one()
            if attempts > limit:
                left = started + window - now
                wait = left if wait is None else max(wait, left)
    return wait


def clear(db: Database, key: str) -> None:
    """Forget a key's attempts (after a successful login)."""
    with db.begin() as conn:
        conn.execute(delete(t).where(t.c.key == key))
