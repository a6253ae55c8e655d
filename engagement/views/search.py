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
    """Contacts and accounts matching `query`: the exact id first, then prefixes of email, first name,
    last name and account name (case-insensitive), at most `limit`."""
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

    def add_contacts(where: Any) -> None:
        for r in conn.execute(contact.where(where, c.c.erased_at.is_(None)).order_by(c.c.id).limit(limit)):
            found.setdefault(
                ("contact", r.id), Hit("contact", r.id, r.name.strip(), r.email, r.account_id, r.account_name)
            )

    def add_accounts(where: Any) -> None:
        for r in conn.execute(account.where(where).order_by(a.c.id).limit(limit)):
            found.setdefault(("account", r.id), Hit("account", r.id, r.name, None, r.id, r.name))

    add_contacts(c.c.id == text)
    add_accounts(a.c.id == text)
    add_contacts(_prefix(dialect, c.c.email, lowered))
    first, _, rest = lowered.partition(" ")
    if rest:  # "ann smi": first name ann, last name starting smi
        add_contacts((func.lower(c.c.first_name) == first) & _prefix(dialect, c.c.last_name, rest.strip()))
    else:
        add_contacts(_prefix(dialect, c.c.first_name, lowered))
        add_contacts(_prefix(dialect, c.c.last_name, lowered))
    add_accounts(_prefix(dialect, a.c.name, lowered))
    return list(found.values())[:limit]
