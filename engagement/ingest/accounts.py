"""Account writes from imports and Segment: the account rows, the revenue rows their MRR changes make,
and the Stripe events that waited for these accounts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection

from engagement import vocab
from engagement.config import Touch
from engagement.ingest import revenue, subscriptions
from engagement.ingest import upserts as ingest
from engagement.ingest.records import AccountIn
from engagement.store.database import Database


def write(
    db: Database,
    conn: Connection,
    records: Sequence[AccountIn],
    rules: Touch,
    now: datetime,
    source: vocab.RevenueSource,
    times: Mapping[str, datetime] | None = None,
) -> None:
    """Upsert the accounts; a record that changes its account's `mrr` adds a revenue row at its own time
    (`times`, else `now`) with `source`; Stripe events kept for these accounts are applied."""
    changes = revenue.mrr_changes(conn, records, times or {}, now, source)
    ingest.upsert_accounts(db, conn, records, rules, now)
    if changes:
        revenue.write(db, conn, changes, now)
        revenue.settle(db, conn, [row["account_id"] for row in changes], now, rules)
    subscriptions.apply_pending(db, conn, [r.id for r in records], now, rules)
