"""Simulated account signals for the demo's health scorecards: support tickets and failed payments (and,
in demo/surveys.py, lower NPS answers from the accounts that churn).

Added after the simulated days, once the renewals are decided (demo/revenue.py), so the journeys' results
stay what they were. An account whose renewal churned had trouble first, most of the time: tickets and
failed payments in the two months before its renewal date (earlier than the calibration's lead, so the
scorecards could see them coming); a quarter of churns come without warning, and some renewing accounts
have tickets too. Every other paying account gets the odd ticket or failed payment. Draws come from a
`random.Random` per account seeded by its id; events are written through the ingest path (`source =
simulated`), from one of the account's contacts.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from engagement.dryrun.demo.dataset import Row
from engagement.dryrun.demo.revenue import PAYING, SOURCE
from engagement.ingest import upserts as ingest
from engagement.ingest.records import EventIn
from engagement.store import schema
from engagement.store.database import Database

TICKET, PAYMENT = "ticket_opened", "payment_failed"
revenue = schema.table(schema.Revenue)


def record(db: Database, accounts: list[Row], start: datetime, end: datetime, seed: int = 7) -> int:
    """Write the signals; return how many events."""
    c, r = schema.contacts.c, revenue.c
    with db.begin() as conn:
        people: dict[str, list[str]] = {}
        for contact_id, account_id in conn.execute(select(c.id, c.account_id).order_by(c.id)):
            people.setdefault(account_id, []).append(contact_id)
        moves = conn.execute(
            select(r.account_id, r.effective_at, r.mrr)
            .where(r.source == SOURCE, r.effective_at > start, r.effective_at <= end)
            .order_by(r.account_id, r.effective_at)
        ).all()
    churned_at: dict[str, datetime] = {a: at for a, at, mrr in moves if mrr <= 0}
    moved_at: dict[str, datetime] = {a: at for a, at, _ in moves}
    events: list[EventIn] = []
    for account in accounts:
        account_id = str(account["id"])
        signed = account["signed_up_at"]
        assert isinstance(signed, datetime)
        if account["plan"] not in PAYING or account_id not in people or signed >= start:
            continue
        rng = random.Random(f"{seed}:signals:{account_id}")
        anchor = churned_at.get(account_id) or moved_at.get(account_id) or end
        if account_id in churned_at and rng.random() < 0.75:  # trouble ahead of the churn
            tickets, payments = rng.randint(2, 5), rng.choice([0, 1, 1, 2])
        elif rng.random() < 0.15:  # a rough patch that ends in a renewal, or nowhere
            tickets, payments = rng.randint(1, 3), rng.choice([0, 0, 1])
        else:  # the odd one
            tickets, payments = rng.choice([0, 0, 0, 1]), 1 if rng.random() < 0.04 else 0
        for name, count in ((TICKET, tickets), (PAYMENT, payments)):
            for _ in range(count):
                at = anchor - timedelta(days=rng.uniform(23, 55))
                if at >= end:
                    continue
                events.append(
                    EventIn.model_validate(
                        {
                            "contact_id": rng.choice(people[account_id]),
                            "account_id": account_id,
                            "name": name,
                            "timestamp": at,
                        }
                    )
                )
    with db.begin() as conn:
        return ingest.insert_events(db, conn, events, end, source="simulated")


def churned(db: Database, start: datetime, end: datetime) -> frozenset[str]:
    """The accounts whose demo revenue fell to 0 in (start, end] (their people answer surveys lower)."""
    r = revenue.c
    with db.begin() as conn:
        found = conn.execute(
            select(r.account_id).where(
                r.source == SOURCE, r.effective_at > start, r.effective_at <= end, r.mrr <= 0
            )
        )
        return frozenset(found.scalars())
