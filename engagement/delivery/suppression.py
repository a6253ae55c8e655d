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


def remove(db: Database, conn: Connection, email: str, now: datetime) -> bool:
    """Lift a suppression; True when there was one.

    The removal is remembered (by hash), so a provider event from before it, replayed or retried late,
    does not suppress the address again; a newer one still does.
    """
    key = address_hash(email)
    result = conn.execute(delete(schema.suppressions).where(schema.suppressions.c.email_hash == key))
    if result.rowcount:
        db.upsert(
            conn,
            schema.suppression_removals,
            [{"email_hash": key, "removed_at": now}],
            ["email_hash"],
            ["removed_at"],
        )
    return bool(result.rowcount)


def removed_since(conn: Connection, hashes: Sequence[str]) -> dict[str, datetime]:
    """When each of these address hashes last had its suppression lifted by hand (those that ever did)."""
    r = schema.suppression_removals
    found: dict[str, datetime] = {}
    keys = sorted(set(hashes))
    for start in range(0, len(keys), 500):
        stmt = select(r.c.email_hash, r.c.removed_at).where(r.c.email_hash.in_(keys[start : start + 500]))
        found.update((row.email_hash, row.removed_at) for row in conn.execute(stmt))
    return found


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
