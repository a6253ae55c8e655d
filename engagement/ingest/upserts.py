"""Write incoming accounts, contacts and events in bulk; events make milestones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, case, literal, select, update
from sqlalchemy.sql import ColumnElement

from engagement.config import Touch
from engagement.ingest.records import AccountIn, ContactIn, EventIn
from engagement.store import schema
from engagement.store.database import Database, among
from engagement.store.types import json_safe

CHUNK = 1000


def touch_expr(rules: Touch) -> ColumnElement[str]:
    """The touch tier from plan and MRR, as SQL (first matching rule wins)."""
    a = schema.accounts.c
    whens: list[tuple[ColumnElement[bool], str]] = []
    for rule in rules.rules:
        checks: list[ColumnElement[bool]] = []
        if rule.plans is not None:
            checks.append(a.plan.in_(rule.plans))
        if rule.min_mrr is not None:
            checks.append(a.mrr >= rule.min_mrr)
        cond = checks[0] if len(checks) == 1 else checks[0] & checks[1]
        whens.append((cond, rule.touch))
    return case(*whens, else_=literal(rules.default)) if whens else literal(rules.default)


def upsert_accounts(
    db: Database, conn: Connection, rows: Sequence[AccountIn], rules: Touch, now: datetime
) -> int:
    """Insert or update accounts; recompute the touch tier unless it was set explicitly."""
    given: list[dict[str, Any]] = []
    for row in rows:
        values = row.provided()
        values["traits"] = json_safe(values.get("traits", {})) if "traits" in values else None
        if values["traits"] is None:
            del values["traits"]
        if "touch" in values and values["touch"] is not None:
            values["touch_explicit"] = True
        else:
            values.pop("touch", None)
        values["updated_at"] = now
        given.append(values)
    for columns, group in by_columns(given).items():
        db.upsert(conn, schema.accounts, group, ["id"], [c for c in columns if c != "id"])
    retouch(conn, [r.id for r in rows], rules)
    return len(rows)


def retouch(conn: Connection, ids: Sequence[str], rules: Touch) -> None:
    """Recompute the touch tier of these accounts from their plan and MRR, unless it was set explicitly."""
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        conn.execute(
            update(schema.accounts)
            .where(schema.accounts.c.id.in_(chunk), schema.accounts.c.touch_explicit.is_(False))
            .values(touch=touch_expr(rules))
        )


def upsert_contacts(db: Database, conn: Connection, rows: Sequence[ContactIn], now: datetime) -> int:
    """Insert or update contacts (the fields a row gives; the others are kept).

    An erased contact stays a tombstone: a row for it (a CRM sync sending it again, say) writes nothing.
    """
    given: list[dict[str, Any]] = []
    for row in rows:
        values = row.provided()
        if "traits" in values:
            values["traits"] = json_safe(values["traits"])
        if values.get("email"):
            values["email"] = values["email"].strip()
        values["updated_at"] = now
        given.append(values)
    for columns, group in by_columns(given).items():
        db.upsert(
            conn,
            schema.contacts,
            group,
            ["id"],
            [c for c in columns if c != "id"],
            only_if=_not_erased,
        )
    return len(rows)


def by_columns(rows: Sequence[dict[str, Any]]) -> dict[frozenset[str], list[dict[str, Any]]]:
    """Rows grouped by the columns they set; rows for one id merge in order, so the last one wins."""
    merged: dict[str, dict[str, Any]] = {}
    for values in rows:
        merged.setdefault(values["id"], {}).update(values)
    grouped: dict[frozenset[str], list[dict[str, Any]]] = {}
    for values in merged.values():
        grouped.setdefault(frozenset(values), []).append(values)
    return grouped


def account_of(conn: Connection, contact_ids: Sequence[str]) -> dict[str, str]:
    """contact id → account id, for the contacts that exist."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(contact_ids))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        stmt = select(schema.contacts.c.id, schema.contacts.c.account_id).where(
            among(conn, schema.contacts.c.id, chunk)
        )
        found.update({cid: aid for cid, aid in conn.execute(stmt)})
    return found


# erased contacts; an `existing` lookup with it is an index lookup a contact (from the partial index of
# erased contacts where the planner has statistics; by primary key on a SQLite database never analysed)
ERASED = schema.contacts.c.erased_at.is_not(None)


def existing(
    conn: Connection, column: Any, values: Sequence[str], where: ColumnElement[bool] | None = None
) -> set[str]:
    """Which of `values` exist in `column` (in rows where `where` holds, when given)."""
    found: set[str] = set()
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), CHUNK):
        found.update(
            conn.execute(existing_query(conn, column, unique[start : start + CHUNK], where)).scalars()
        )
    return found


def existing_query(
    conn: Connection, column: Any, values: Sequence[str], where: ColumnElement[bool] | None = None
) -> Any:
    """SELECT of the `values` found in `column` (where `where` holds, when given)."""
    stmt = select(column).where(among(conn, column, values))
    return stmt if where is None else stmt.where(where)


def insert_events(
    db: Database, conn: Connection, rows: Sequence[EventIn], now: datetime, *, source: str = "product"
) -> int:
    """Store events (an event id seen before is skipped) and the milestones they reach.

    An erased contact's events keep their names and times, as the erasure left its earlier ones: their
    properties are not stored.
    """
    accounts = account_of(conn, [r.contact_id for r in rows if r.account_id is None])
    erased = existing(conn, schema.contacts.c.id, [r.contact_id for r in rows], ERASED)
    values: list[dict[str, Any]] = []
    for row in rows:
        values.append(
            {
                "event_id": row.id,
                "contact_id": row.contact_id,
                "account_id": row.account_id or accounts.get(row.contact_id),
                "name": row.name,
                "timestamp": row.timestamp,
                "properties": {} if row.contact_id in erased else json_safe(row.properties),
                "source": source,
                "received_at": now,
            }
        )
    seen = existing(conn, schema.events.c.event_id, [v["event_id"] for v in values if v["event_id"]])
    with_id: list[dict[str, Any]] = []
    for v in values:  # a repeated id is skipped whole: it moves no milestone either
        if v["event_id"] is not None and v["event_id"] not in seen:
            seen.add(v["event_id"])
            with_id.append(v)
    without_id = [v for v in values if v["event_id"] is None]
    with_id.sort(key=itemgetter("event_id"))  # in key order, as the milestones below
    inserted = db.insert_ignore(conn, schema.events, with_id, ["event_id"]) if with_id else 0
    db.executemany(conn, EVENTS, without_id)  # at the driver's speed on SQLite
    inserted += len(without_id)
    record_milestones(db, conn, with_id + without_id)
    return inserted


EVENTS = schema.events.insert()  # built once: events without an id are inserted whole


def record_milestones(db: Database, conn: Connection, events: Sequence[dict[str, Any]]) -> None:
    """Keep the first occurrence of each event name per contact and per account."""
    firsts: dict[tuple[str, str], dict[str, Any]] = {}
    account_firsts: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in events:
        key = (ev["contact_id"], ev["name"])
        if key not in firsts or ev["timestamp"] < firsts[key]["reached_at"]:
            firsts[key] = {
                "contact_id": key[0],
                "name": key[1],
                "account_id": ev["account_id"],
                "reached_at": ev["timestamp"],
            }
        if ev["account_id"]:
            akey = (ev["account_id"], ev["name"])
            if akey not in account_firsts or ev["timestamp"] < account_firsts[akey]["reached_at"]:
                account_firsts[akey] = {"account_id": akey[0], "name": akey[1], "reached_at": ev["timestamp"]}
    # a milestone moves only to an earlier time; most events come later and leave the row unwritten.
    # Rows go in key order, so concurrent requests lock the rows they share in the same order (no deadlock).
    db.upsert(
        conn,
        schema.milestones,
        [firsts[key] for key in sorted(firsts)],
        ["contact_id", "name"],
        ["reached_at"],
        only_if=_earlier,
    )
    db.upsert(
        conn,
        schema.account_milestones,
        [account_firsts[key] for key in sorted(account_firsts)],
        ["account_id", "name"],
        ["reached_at"],
        only_if=_earlier_for_account,
    )


# the upserts' conditions, defined once (Database.upsert keeps the statements it builds with them)
def _not_erased(_excluded: Any) -> ColumnElement[bool]:
    return schema.contacts.c.erased_at.is_(None)


def _earlier(excluded: Any) -> Any:
    return excluded.reached_at < schema.milestones.c.reached_at


def _earlier_for_account(excluded: Any) -> Any:
    return excluded.reached_at < schema.account_milestones.c.reached_at
