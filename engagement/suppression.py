"""The suppression list: addresses we must never email, keyed by a hash of the address."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, select

from engagement.store import schema
from engagement.store.database import Database

REASONS = ("unsubscribe", "bounce", "complaint", "manual")


def address_hash(email: str) -> str:
    """sha256 of the normalised address (what stays after a contact is erased)."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def add(db: Database, conn: Connection, email: str, reason: str, source: str, now: datetime) -> None:
    """Suppress an address (a second suppression keeps the first reason)."""
    row = {
        "email_hash": address_hash(email),
        "email": email.strip().lower(),
        "reason": reason,
        "source": source,
        "created_at": now,
    }
    db.insert_ignore(conn, schema.suppressions, [row], ["email_hash"])


def remove(conn: Connection, email: str) -> bool:
    """Lift a suppression; True when there was one."""
    result = conn.execute(
        delete(schema.suppressions).where(schema.suppressions.c.email_hash == address_hash(email))
    )
    return bool(result.rowcount)


def suppressed(conn: Connection, emails: Sequence[str]) -> set[str]:
    """Which of these addresses are suppressed (compared normalised)."""
    by_hash = {address_hash(e): e for e in emails}
    found: set[str] = set()
    keys = list(by_hash)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        stmt = select(schema.suppressions.c.email_hash).where(schema.suppressions.c.email_hash.in_(chunk))
        found.update(by_hash[h] for h in conn.execute(stmt).scalars())
    return found
