"""Stripe subscription changes into revenue rows: each event id once, kept pending until its account exists.

Each applied event gives its subscription an MRR from the event's `created` on (`stripe_subscription`);
the account's `stripe` revenue rows are the sum over its subscriptions at each instant one of them
changed. Events can arrive in any order: applying one recomputes the account's rows from its instant on.
Two events of one subscription with the same `created` second: the one applied last stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, exists, func, select, update

from engagement import vocab
from engagement.config import Touch
from engagement.ingest import revenue
from engagement.ingest import upserts as ingest
from engagement.store import schema
from engagement.store.database import Database, among

if TYPE_CHECKING:  # the importer needs this module, not Stripe's library
    from engagement.ingest.stripe_events import Change

APPLIED, PENDING, DUPLICATE = "applied", "pending", "duplicate"
CHUNK = 500


def take(db: Database, conn: Connection, change: Change, now: datetime, rules: Touch) -> str:
    """Record one event and apply it if its account exists: `applied`, `pending` or `duplicate`."""
    row = {**asdict(change), "received_at": now, "applied_at": None}
    if not db.insert_new(conn, schema.stripe_events, [row], ["event_id"], "event_id"):
        return DUPLICATE
    if not ingest.existing(conn, schema.accounts.c.id, [change.account_id]):
        return PENDING
    _apply(db, conn, [row], now, rules)
    return APPLIED


def apply_pending(
    db: Database, conn: Connection, account_ids: Sequence[str], now: datetime, rules: Touch
) -> int:
    """Apply the kept events of these accounts (they exist now); return how many were applied."""
    e = schema.stripe_events.c
    waiting = e.applied_at.is_(None)
    if not account_ids or conn.execute(select(e.event_id).where(waiting).limit(1)).first() is None:
        return 0  # the usual case, one index probe: nothing is waiting for any account
    ids = sorted(set(account_ids))
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), CHUNK):
        stmt = select(schema.stripe_events).where(
            waiting, among(conn, e.account_id, ids[start : start + CHUNK])
        )
        found.extend(dict(row) for row in conn.execute(stmt).mappings())
    found.sort(key=lambda row: row["received_at"])  # as they arrived, so the last one received stands
    _apply(db, conn, found, now, rules)
    return len(found)


def _apply(
    db: Database, conn: Connection, events: Sequence[dict[str, Any]], now: datetime, rules: Touch
) -> None:
    """Give each event's subscription its MRR from the event's instant on; recompute and settle the accounts."""
    if not events:
        return
    accounts = sorted({ev["account_id"] for ev in events})
    # one writer an account at a time: two subscriptions' events applied at once would each sum without
    # the other's row (PostgreSQL; SQLite has one writer anyway)
    db.advisory_locks(conn, [f"stripe-account:{account}" for account in accounts])
    states = {
        (ev["subscription_id"], ev["created"]): {
            "subscription_id": ev["subscription_id"],
            "effective_at": ev["created"],
            "account_id": ev["account_id"],
            "mrr": ev["mrr"],
            "event_id": ev["event_id"],
        }
        for ev in events
    }
    db.upsert(
        conn,
        schema.stripe_subscriptions,
        [states[key] for key in sorted(states)],
        ["subscription_id", "effective_at"],
        ["account_id", "mrr", "event_id"],
    )
    e = schema.stripe_events.c
    applied = [ev["event_id"] for ev in events]
    for start in range(0, len(applied), CHUNK):
        conn.execute(
            update(schema.stripe_events)
            .where(e.event_id.in_(applied[start : start + CHUNK]))
            .values(applied_at=now)
        )
    since = min(ev["created"] for ev in events)
    revenue.write(db, conn, _sums(conn, accounts, since), now)
    revenue.settle(db, conn, accounts, now, rules)


def _sums(conn: Connection, accounts: Sequence[str], since: datetime) -> list[dict[str, Any]]:
    """The accounts' Stripe revenue rows at each instant from `since` on where a subscription changed."""
    s = schema.stripe_subscriptions
    held, later, moment = s.alias("held"), s.alias("later"), s.alias("moment")
    instants = (
        select(moment.c.account_id, moment.c.effective_at)
        .where(among(conn, moment.c.account_id, accounts), moment.c.effective_at >= since)
        .distinct()
        .subquery("instant")
    )
    # a subscription's row holds at the instant unless a later row of it came at or before the instant
    superseded = (
        exists()
        .where(
            later.c.subscription_id == held.c.subscription_id,
            later.c.effective_at > held.c.effective_at,
            later.c.effective_at <= instants.c.effective_at,
        )
        .correlate(held, instants)
    )
    total = (
        select(func.coalesce(func.sum(held.c.mrr), 0.0))
        .where(
            and_(held.c.account_id == instants.c.account_id, held.c.effective_at <= instants.c.effective_at),
            ~superseded,
        )
        .scalar_subquery()
    )
    query = select(instants.c.account_id, instants.c.effective_at, total.label("mrr"))
    return [
        {
            "account_id": account_id,
            "effective_at": at,
            "mrr": float(mrr),
            "plan": None,
            "renewal_date": None,
            "source": vocab.RevenueSource.STRIPE,
        }
        for account_id, at, mrr in conn.execute(query)
    ]
