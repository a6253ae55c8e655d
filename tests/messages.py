"""A sample outbound email for the provider tests (outbox, SMTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engagement.delivery import unsubscribe
from engagement.delivery.message import OutboundEmail

SENT_AT = datetime(2026, 3, 2, 14, 30, 15, tzinfo=UTC)
LINK = "https://engage.example.com/unsubscribe/Y29udGFjdC0xMjM0NTY3ODkw.q7Vw2x9Zb1c3d5e7f9h1j3k5m7"


def outbound(**changes: Any) -> OutboundEmail:
    """An email to Ada with our unsubscribe headers; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "delivery_id": "0b7e4c1a-3f0e-5d6c-9a8b-7c6d5e4f3a2b",
        "to": "ada@example.com",
        "to_name": "Ada Lovelace",
        "sender": "Chartwell <success@chartwell.example>",
        "reply_to": "Chartwell Customer Success <help@chartwell.example>",
        "subject": "Welcome aboard, Ada",
        "html": "<p>Hi Ada,</p>",
        "text": "Hi Ada,\n",
        "sent_at": SENT_AT,
        "headers": unsubscribe.headers(LINK, None),
    }
    return OutboundEmail(**{**fields, **changes})
