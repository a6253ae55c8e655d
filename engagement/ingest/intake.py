"""Write a batch of Segment calls: accounts, contacts and their links, then events and milestones.

Everything goes through `ingest`'s bulk upserts inside the caller's transaction, so a request is
applied whole or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from engagement import vocab
from engagement.config import Settings
from engagement.ingest import accounts, segment
from engagement.ingest import upserts as ingest
from engagement.store import schema
from engagement.store.database import Database, among

# identify and group calls are de-duplicated here; track and page calls by their event's id
REMEMBERED = (segment.Identify, segment.Group)
PLACEHOLDER_NAME = "(no account yet)"


@dataclass(frozen=True)
class Written:
    """What one request changed."""

    received: int
    duplicates: int
    skipped: int
    accounts: int
    contacts: int
    events: int


def write(
    db: Database,
    conn: Connection,
    calls: Sequence[tuple[list[str | int], segment.Call]],
    settings: Settings,
    now: datetime,
) -> Written:
    """Apply the calls in order (a messageId seen before is skipped) and return the counts."""
    fresh = _unseen(db, conn, calls, now)
    unassigned = settings.api.unassigned_account
    known = _known(conn, fresh)
    planned = segment.plan(list(fresh), known, now, unassigned)
    if planned.needs_unassigned:
        placeholder = {
            "id": unassigned,
            "name": PLACEHOLDER_NAME,
            "touch": settings.touch.default,
            "updated_at": now,
        }
        db.insert_ignore(conn, schema.accounts, [placeholder], ["id"])
    if planned.accounts:
        source = vocab.RevenueSource.SEGMENT
        accounts.write(db, conn, planned.accounts, settings.touch, now, source, planned.mrr_at)
    if planned.contacts:
        ingest.upsert_contacts(db, conn, planned.contacts, now)
    if planned.moved:
        _rehome(db, conn, planned.moved, unassigned)
    events = ingest.insert_events(db, conn, planned.events, now) if planned.events else 0
    return Written(
        received=len(calls),
        duplicates=len(calls) - len(fresh),
        skipped=planned.skipped,
        accounts=len(planned.accounts),
        contacts=len(planned.contacts),
        events=events,
    )


def _unseen(
    db: Database, conn: Connection, calls: Sequence[tuple[list[str | int], segment.Call]], now: datetime
) -> list[tuple[list[str | int], segment.Call]]:
    """The calls not applied before: identify/group messageIds are remembered; a repeat in one request is dropped."""
    kept: list[tuple[list[str | int], segment.Call]] = []
    ids: set[str] = set()
    remembered: list[dict[str, Any]] = []
    for loc, call in calls:
        if call.messageId is not None:
            if call.messageId in ids:
                continue
            ids.add(call.messageId)
            if isinstance(call, REMEMBERED):
                remembered.append({"message_id": call.messageId, "type": call.type, "received_at": now})
        kept.append((loc, call))
    if not remembered:
        return kept
    new = set(db.insert_new(conn, schema.intake_messages, remembered, ["message_id"], "message_id"))
    return [
        (loc, c)
        for loc, c in kept
        if not isinstance(c, REMEMBERED) or c.messageId is None or c.messageId in new
    ]


def _known(conn: Connection, calls: Sequence[tuple[list[str | int], segment.Call]]) -> segment.Known:
    """The current account and traits of the contacts and accounts that identify and group calls name."""
    users: set[str] = set()
    groups: set[str] = set()
    for _, call in calls:
        if isinstance(call, segment.Identify | segment.Group) and call.userId is not None:
            users.add(call.userId)
        if isinstance(call, segment.Group):
            groups.add(call.groupId)
        if isinstance(call, segment.Identify) and isinstance(call.traits.get("company"), dict):
            groups.add(str(call.traits["company"].get("id")))
    known = segment.Known()
    c, a = schema.contacts, schema.accounts
    for chunk in _chunks(sorted(users)):
        for cid, account_id, traits in conn.execute(
            select(c.c.id, c.c.account_id, c.c.traits).where(among(conn, c.c.id, chunk))
        ):
            known.contacts[cid] = (account_id, traits or {})
    for chunk in _chunks(sorted(groups)):
        for aid, traits in conn.execute(select(a.c.id, a.c.traits).where(among(conn, a.c.id, chunk))):
            known.accounts[aid] = traits or {}
    return known


def _rehome(db: Database, conn: Connection, moved: dict[str, str], unassigned: str) -> None:
    """Contacts that join their first real account bring the events and milestones they had without one."""
    pairs = [{"_contact": cid, "_account": aid} for cid, aid in moved.items()]
    for table in (schema.events, schema.milestones):
        conn.execute(
            update(table)
            .where(
                table.c.contact_id == bindparam("_contact"),
                or_(table.c.account_id.is_(None), table.c.account_id == unassigned),
            )
            .values(account_id=bindparam("_account")),
            pairs,
        )
    m = schema.milestones
    reached: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(moved)):
        stmt = select(m.c.contact_id, m.c.name, m.c.account_id, m.c.reached_at).where(
            m.c.contact_id.in_(chunk)
        )
        reached.extend(
            {"contact_id": cid, "name": name, "account_id": aid, "timestamp": at}
            for cid, name, aid, at in conn.execute(stmt)
        )
    if reached:
        ingest.record_milestones(db, conn, reached)


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
