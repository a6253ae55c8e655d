"""The in-app inbox: a contact's live nudges, and what the contact did with one (seen, clicked, dismissed)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Connection, exists, literal, or_, select, update

from engagement.store import schema
from engagement.store.database import Database

NudgeEvent = Literal["seen", "clicked", "dismissed"]
COLUMN = {"seen": "seen_at", "clicked": "clicked_at", "dismissed": "dismissed_at"}
LINK_RULE = "a call-to-action links to an http(s) URL or a relative one (/settings, ?tab=2, #help)"
# Browsers drop tabs and newlines anywhere in a URL and spaces and control characters around it, so
# `java\tscript:` is a scheme, and read `\` as `/` before the query, so `/\host` is another site.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]|^ | $|^[^?#]*\\")


def safe_link(url: str) -> bool:
    """Whether a nudge may link to `url`: http(s) with a host, or relative to the page (not `//host`)."""
    if _UNSAFE.search(url):
        return False
    parts = urlsplit(url)
    if parts.scheme:
        return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
    return not url.startswith("//")


def live(conn: Connection, contact_id: str, now: datetime) -> list[dict[str, Any]]:
    """The contact's nudges that are neither expired, clicked nor dismissed: unseen first, newest first."""
    n, c, a = schema.nudges, schema.contacts, schema.survey_answers
    rows = conn.execute(
        select(n)
        .join(c, c.c.id == n.c.contact_id)
        .where(
            n.c.contact_id == contact_id,
            c.c.erased_at.is_(None),
            n.c.created_at <= now,
            or_(n.c.expires_at.is_(None), n.c.expires_at > now),
            n.c.clicked_at.is_(None),
            n.c.dismissed_at.is_(None),
            ~exists(select(literal(1)).where(a.c.delivery_id == n.c.delivery_id)),  # an answered survey
        )
        .order_by(n.c.seen_at.is_not(None), n.c.created_at.desc(), n.c.id)
    ).mappings()
    return [public(row) for row in rows]


def public(row: Any) -> dict[str, Any]:
    """A nudge as the API shows it."""
    cta = {"label": row["cta_label"], "url": row["cta_url"]} if row["cta_url"] else None

    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row["id"],
        "journey_id": row["journey_id"],
        "step_id": row["step_id"],
        "title": row["title"],
        "body": row["body"],
        "cta": cta,
        "created_at": stamp(row["created_at"]),
        "expires_at": stamp(row["expires_at"]),
        "seen_at": stamp(row["seen_at"]),
        "clicked_at": stamp(row["clicked_at"]),
        "dismissed_at": stamp(row["dismissed_at"]),
        "survey": (
            {"kind": row["survey_kind"], "comment": row["survey_comment"]} if row["survey_kind"] else None
        ),
    }


@dataclass(frozen=True)
class Found:
    """A nudge and whether its contact was erased."""

    row: Any
    erased: bool


def find(conn: Connection, nudge_id: str) -> Found | None:
    """The nudge with this id, or None."""
    n, c = schema.nudges, schema.contacts
    row = conn.execute(
        select(n, c.c.erased_at).outerjoin(c, c.c.id == n.c.contact_id).where(n.c.id == nudge_id)
    ).one_or_none()
    if row is None:
        return None
    return Found(row._mapping, row.erased_at is not None)


def record(db: Database, conn: Connection, nudge: Any, kind: NudgeEvent, now: datetime) -> list[str]:
    """Record `kind` (a click or dismissal implies the nudge was seen); return the kinds that were new.

    Each kind is recorded once per nudge: the first time stays, repeats change nothing.
    """
    kinds: list[NudgeEvent] = ["seen"] if kind == "seen" else ["seen", kind]
    n = schema.nudges
    rows = [
        {
            "delivery_id": nudge["delivery_id"],
            "contact_id": nudge["contact_id"],
            "journey_id": nudge["journey_id"],
            "step_id": nudge["step_id"],
            "kind": k,
            "occurred_at": now,
            "dedupe_key": f"nudge:{nudge['id']}:{k}",
            "simulated": False,
            "data": {"source": "inbox"},
        }
        for k in kinds
        if nudge[COLUMN[k]] is None
    ]
    fresh: list[str] = []
    for row in rows:
        if db.insert_ignore(conn, schema.responses, [row], ["dedupe_key"]):
            fresh.append(row["kind"])
            column = n.c[COLUMN[row["kind"]]]
            conn.execute(update(n).where(n.c.id == nudge["id"], column.is_(None)).values({column: now}))
    return fresh
