"""Search contacts and accounts by id, email, name or account name: exact ids, then indexed prefixes.

Each prefix is matched on `lower(column)` (the 0023 indexes): `LIKE 'p%'` on PostgreSQL, whose
text_pattern_ops index serves it under any collation, and a range on SQLite, whose LIKE would not use
the index. Every statement is capped, so a short prefix at a million contacts reads LIMIT rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from engagement.store import schema

LIMIT = 20
TOP = chr(0x10FFFF)  # above every character: `x <= s < x + TOP` is "s starts with x"
c, a = schema.contacts, schema.accounts


@dataclass(frozen=True)
class Hit:
    """One search result: a contact or an account."""

    kind: str  # contact | account
    id: str
    name: str
    email: str | None
    account_id: str | None
    account_name: str | None


def _prefix(dialect: str, column: Any, text: str) -> Any:
    lowered = func.lower(column)
    if dialect == "postgresql":
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return lowered.like(escaped + "%", escape="\\")
    return (lowered >= text) & (lowered < text + TOP)


def search(conn: Connection, query: str, limit: int = LIMIT) -> list[Hit]:
    """Contacts and accounts matching `query` (at most `limit`): by exact id, and by prefix of email, first
    name, last name or account name (case-insensitive); an exact id first, then by kind and id."""
    text = query.strip()
    if not text:
        return []
    lowered = text.lower()
    dialect = conn.dialect.name
    name = (c.c.first_name + " " + c.c.last_name).label("name")
    contact = select(c.c.id, name, c.c.email, c.c.account_id, a.c.name.label("account_name")).join(
        a, a.c.id == c.c.account_id, isouter=True
    )
    account = select(a.c.id, a.c.name)
    found: dict[tuple[str, str], Hit] = {}

    def ordered(query: Any, order: Any) -> Any:
        # SQLite: by the searched expression, whose index finds and orders the rows, so LIMIT stops early;
        # PostgreSQL: unordered (a text_pattern_ops index does not order under the database's collation),
        # so the planner stops at `limit` rows from the index, or from the table for a very common prefix
        return query if dialect == "postgresql" else query.order_by(order)

    def add_contacts(where: Any, order: Any = c.c.id) -> None:
        query = ordered(contact.where(where, c.c.erased_at.is_(None)), order).limit(limit)
        for r in conn.execute(query):
            found.setdefault(
                ("contact", r.id), Hit("contact", r.id, r.name.strip(), r.email, r.account_id, r.account_name)
            )

    def add_accounts(where: Any, order: Any = a.c.id) -> None:
        for r in conn.execute(ordered(account.where(where), order).limit(limit)):
            found.setdefault(("account", r.id), Hit("account", r.id, r.name, None, r.id, r.name))

    add_contacts(c.c.id == text)
    add_accounts(a.c.id == text)
    add_contacts(_prefix(dialect, c.c.email, lowered), func.lower(c.c.email))
    first, _, rest = lowered.partition(" ")
    if rest:  # "ann smi": first name ann, last name starting smi
        last = func.lower(c.c.last_name)
        add_contacts(
            (func.lower(c.c.first_name) == first) & _prefix(dialect, c.c.last_name, rest.strip()), last
        )
    else:
        add_contacts(_prefix(dialect, c.c.first_name, lowered), func.lower(c.c.first_name))
        add_contacts(_prefix(dialect, c.c.last_name, lowered), func.lower(c.c.last_name))
    add_accounts(_prefix(dialect, a.c.name, lowered), func.lower(a.c.name))
    return sorted(found.values(), key=lambda h: (h.id != text, h.kind, h.id))[:limit]
