"""Simulated customers for the demo: opens, clicks, nudge clicks and product progress.

Every row written here is marked simulated (responses.simulated, events.source = "simulated",
properties.simulated = true). Contacts who click our messages progress faster, so the holdout
(who get nothing) converts less: the effect the reports are built to measure.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, literal, select

from engagement import vocab
from engagement.ingest import upserts as ingest
from engagement.ingest.records import EventIn
from engagement.store import direct, schema
from engagement.store.database import Database, among

FUNNEL = ("first_login", "integration_connected", "first_report_created")
DAILY_HAZARD = {"first_login": 0.30, "integration_connected": 0.09, "first_report_created": 0.055}
CLICK_BOOST, TOUCH_BOOST = 2.6, 1.5
_c, _m = schema.contacts, schema.milestones
# a day's reads, built once (store/direct.py): the contacts signed up by `now`, and the funnel steps reached
SIGNED_UP = (
    select(_c.c.id, _c.c.account_id, _c.c.created_at)
    .where(_c.c.created_at <= bindparam("now", type_=_c.c.created_at.type))
    .order_by(_c.c.id)
)
REACHED = select(_m.c.contact_id, _m.c.name).where(
    _m.c.name.in_([literal(name) for name in FUNNEL]),
    _m.c.reached_at <= bindparam("now", type_=_m.c.reached_at.type),
)


@dataclass
class Customers:
    """The simulated people behind the contacts, with what they remember of our messages."""

    db: Database
    seed: int
    last_click: dict[str, datetime] = field(default_factory=dict)
    last_touch: dict[str, datetime] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    base: dict[str, float] = field(default_factory=dict)

    def respond(self, now: datetime, sent: Sequence[str]) -> None:
        """React to the messages sent at `now` (`sent`: the ids the tick's dispatch sent)."""
        rng = random.Random(f"{self.seed}:respond:{now.isoformat()}")
        d = schema.deliveries
        with self.db.begin() as conn:
            # by key, and the rest checked here: given `status = 'sent'` in SQL, SQLite walks the status
            # index over every delivery sent so far (~3% of the demo), not the ids
            found = conn.execute(
                select(
                    d.c.id, d.c.channel, d.c.contact_id, d.c.journey_id, d.c.step_id, d.c.status, d.c.sent_at
                )
                .where(among(conn, d.c.id, sent))
                .order_by(d.c.id)
            ).all()
            delivered = [
                r
                for r in found
                if r.status == vocab.DeliveryStatus.SENT and r.sent_at == now and r.contact_id is not None
            ]
            rows: list[dict[str, Any]] = []
            nudge_updates: list[dict[str, Any]] = []
            for delivery in delivered:
                if delivery.channel == "notify":
                    continue
                self.last_touch[delivery.contact_id] = now
                for kind, at in _reactions(rng, delivery.channel, now):
                    rows.append(
                        {
                            "delivery_id": delivery.id,
                            "contact_id": delivery.contact_id,
                            "journey_id": delivery.journey_id,
                            "step_id": delivery.step_id,
                            "kind": kind,
                            "occurred_at": at,
                            "dedupe_key": f"sim:{delivery.id}:{kind}",
                            "simulated": True,
                            "data": {"simulated": True},
                        }
                    )
                    self.counts[kind] = self.counts.get(kind, 0) + 1
                    if kind in ("click", "clicked"):
                        self.last_click[delivery.contact_id] = at
                    if delivery.channel == "in_app":
                        nudge_updates.append({"id": delivery.id, "kind": kind, "at": at})
            if rows:
                self.db.insert_ignore(conn, schema.responses, rows, ["dedupe_key"])
            n = schema.nudges
            for kind, column in (
                ("seen", "seen_at"),
                ("clicked", "clicked_at"),
                ("dismissed", "dismissed_at"),
            ):
                changes = [{"_id": c["id"], column: c["at"]} for c in nudge_updates if c["kind"] == kind]
                self.db.update_by_id(conn, n, changes)

    def live(self, now: datetime) -> int:
        """One simulated day of product use: funnel progress and active days."""
        rng = random.Random(f"{self.seed}:live:{now.date().isoformat()}")
        events: list[EventIn] = []
        with self.db.begin() as conn:
            contacts = direct.execute(conn, SIGNED_UP, {"now": now}).all()
            reached: dict[str, set[str]] = {}
            for contact_id, name in direct.execute(conn, REACHED, {"now": now}).all():
                reached.setdefault(contact_id, set()).add(name)
            # each contact's next funnel step: the first not reached
            step_of = {cid: next((n for n in FUNNEL if n not in done), None) for cid, done in reached.items()}
            young = now - timedelta(days=60)  # signed up within 60 days
            click, touch = now - timedelta(days=5), now - timedelta(days=3)  # what a boost lasts
            draw = rng.random
            for contact_id, account_id, created_at in contacts:
                boost = self._boost(contact_id, now, click, touch)
                step = step_of.get(contact_id, FUNNEL[0])
                fresh = created_at is not None and created_at > young
                if step is not None and fresh and draw() < DAILY_HAZARD[step] * boost:
                    events.append(self._event(rng, contact_id, account_id, step, now))
                base = self._base(contact_id)
                if draw() < min(0.95, base * (1.0 + 0.6 * (boost - 1.0))):
                    events.append(self._event(rng, contact_id, account_id, "active_day", now))
            ingest.insert_events(self.db, conn, events, now, source="simulated")
        for event in events:
            self.counts[event.name] = self.counts.get(event.name, 0) + 1
        return len(events)

    def _base(self, contact_id: str) -> float:
        """How likely this person is to use the product on a given day (fixed per person)."""
        base = self.base.get(contact_id)
        if base is None:
            base = self.base[contact_id] = (
                0.08 + 0.6 * random.Random(f"{self.seed}:{contact_id}").random() ** 2
            )
        return base

    def _boost(self, contact_id: str, now: datetime, click: datetime, touch: datetime) -> float:
        """A click within 5 days (`click` is `now` less 5 days) or a message within 3 (`touch`)."""
        clicked = self.last_click.get(contact_id)
        if clicked is not None and click <= clicked <= now:
            return CLICK_BOOST
        touched = self.last_touch.get(contact_id)
        if touched is not None and touched >= touch:
            return TOUCH_BOOST
        return 1.0

    def _event(
        self, rng: random.Random, contact_id: str, account_id: str | None, name: str, now: datetime
    ) -> EventIn:
        at = now - timedelta(minutes=rng.randint(0, 600))
        # built here from stored ids and an aware time: nothing for the model to check (about 36,000 events)
        return EventIn.model_construct(
            contact_id=contact_id,
            account_id=account_id,
            name=name,
            timestamp=at,
            properties={"simulated": True, "source": "demo"},
        )


def _reactions(rng: random.Random, channel: str, now: datetime) -> list[tuple[str, datetime]]:
    found: list[tuple[str, datetime]] = []
    if channel == "email":
        if rng.random() < 0.45:
            opened = now + timedelta(minutes=rng.randint(5, 600))
            found.append(("open", opened))
            if rng.random() < 0.32:
                found.append(("click", opened + timedelta(minutes=rng.randint(1, 30))))
    elif channel == "in_app" and rng.random() < 0.7:
        seen = now + timedelta(minutes=rng.randint(30, 1800))
        found.append(("seen", seen))
        roll = rng.random()
        if roll < 0.38:
            found.append(("clicked", seen + timedelta(seconds=rng.randint(5, 120))))
        elif roll < 0.75:
            found.append(("dismissed", seen + timedelta(seconds=rng.randint(2, 60))))
    return found
