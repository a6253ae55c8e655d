"""Signed unsubscribe tokens and the RFC 8058 headers that carry them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from sqlalchemy import Connection, select

from engagement import errors
from engagement.store import schema
from engagement.store.database import Database


class BadToken(errors.EngagementError):
    """The unsubscribe link is invalid or was altered."""


def b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """The bytes of `b64`."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(contact_id: str, secret: str) -> str:
    """A URL-safe token naming the contact, with an HMAC-SHA256 signature."""
    payload = contact_id.encode("utf-8")
    mac = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()[:16]
    return f"{b64(payload)}.{b64(mac)}"


def read_token(token: str, secret: str) -> str:
    """The contact id inside a token; raise BadToken if the signature does not match."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = unb64(payload_text)
        expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(expected, unb64(mac_text)):
            raise BadToken()
        return payload.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken() from exc


def url(public_url: str, contact_id: str, secret: str, delivery_id: str | None = None) -> str:
    """The one-click unsubscribe URL for a contact; `delivery_id` names the email it came in."""
    link = f"{public_url.rstrip('/')}/unsubscribe/{make_token(contact_id, secret)}"
    return f"{link}?d={delivery_id}" if delivery_id else link


def headers(link: str, mailto: str | None) -> dict[str, str]:
    """List-Unsubscribe (https, plus mailto if configured) and List-Unsubscribe-Post."""
    targets = [f"<{link}>"] + ([f"<mailto:{mailto}?subject=unsubscribe>"] if mailto else [])
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def record(db: Database, conn: Connection, contact_id: str, delivery_id: str | None, now: datetime) -> bool:
    """Record the unsubscribe as a response to the email whose link was used; True if it was new.

    The delivery must be an email to this contact (the link's `d` is not signed, so it is checked).
    A link without one (or with a foreign one) counts against the contact's latest sent email, if any.
    """
    d = schema.deliveries.c
    mine = (d.contact_id == contact_id, d.channel == "email", d.sent_at.is_not(None))
    delivery = None
    if delivery_id:
        delivery = conn.execute(
            select(d.id, d.journey_id, d.step_id).where(d.id == delivery_id, *mine)
        ).first()
    if delivery is None:
        latest = select(d.id, d.journey_id, d.step_id).where(*mine).order_by(d.sent_at.desc(), d.id.desc())
        delivery = conn.execute(latest.limit(1)).first()
    if delivery is None:
        return False
    row = {
        "delivery_id": delivery.id,
        "contact_id": contact_id,
        "journey_id": delivery.journey_id,
        "step_id": delivery.step_id,
        "kind": "unsubscribe",
        "occurred_at": now,
        "dedupe_key": f"link-unsubscribe:{delivery.id}",
        "simulated": False,
        "data": {"source": "link"},
    }
    return db.insert_ignore(conn, schema.responses, [row], ["dedupe_key"]) > 0
