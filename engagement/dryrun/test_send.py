"""Test send: one email step rendered for one contact (preview.py) and sent to a test address through the
configured provider, recorded in the `test_send` ledger.

Not a delivery: it has no enrollment, may be sent again and again, and since it lives in its own table no
report, weekly cap or dispatch query sees it. The subject is marked `[test]` and the message carries
`X-Engagement-Test: 1`; its provider metadata names the test send, never a delivery, so a provider event
for it matches no delivery. A suppressed test address is refused like any other.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update

from engagement import errors
from engagement.config import Settings
from engagement.delivery import suppression, unsubscribe
from engagement.delivery.message import EmailProvider, OutboundEmail, SendError
from engagement.delivery.templates import Renderer
from engagement.dryrun import preview
from engagement.journeys.catalog import Journey
from engagement.store import schema
from engagement.store.database import Database

ADDRESS = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")
MARK = "[test] "
t = schema.test_sends


class RefusedError(errors.EngagementError):
    """A test send was refused or failed; nothing was sent."""


@dataclass(frozen=True)
class Sent:
    """What a test send did: its ledger id, where it went, the subject and the provider's message id."""

    id: str
    to: str
    subject: str
    provider_message_id: str


def check_address(address: str, field: str) -> str:
    """The test address, normalised, or a RefusedError naming `field`."""
    found = address.strip()
    if len(found) > 320 or not ADDRESS.fullmatch(found):
        raise RefusedError(f"{field}: {address!r} is not an email address (like you@example.com)")
    return found


def send(
    db: Database,
    settings: Settings,
    renderer: Renderer,
    provider: EmailProvider,
    journey: Journey,
    step_id: str,
    contact_id: str,
    to: str,
    now: datetime,
    *,
    requested_by: str,
    field: str = "--send-to",
) -> Sent:
    """Render `step_id` for `contact_id` and send it to `to`; the ledger row says sent or failed."""
    address = check_address(to, field)
    shown = preview.render(settings, db, renderer, journey, step_id, contact_id, now)
    if shown.kind != "email" or shown.html is None or shown.text is None:
        raise RefusedError(f"step {step_id!r} is an {shown.kind} step: only email steps can be test-sent")
    sent_id = str(uuid.uuid4())
    subject = MARK + (shown.subject or "")
    with db.begin() as conn:
        if suppression.suppressed(conn, [address]):
            raise RefusedError(f"{field}: {address} is on the suppression list")
        conn.execute(
            t.insert().values(
                id=sent_id,
                journey_id=journey.id,
                step_id=step_id,
                contact_id=contact_id,
                to_address=address,
                subject=subject,
                provider=provider.name,
                status="sending",
                requested_by=requested_by,
                created_at=now,
            )
        )
    link = unsubscribe.url(settings.server.public_url, contact_id, settings.unsubscribe.secret)
    message = OutboundEmail(
        delivery_id=sent_id,
        to=address,
        to_name="",
        sender=settings.email.from_,
        reply_to=settings.email.reply_to,
        subject=subject,
        html=shown.html,
        text=shown.text,
        sent_at=now,
        headers={**unsubscribe.headers(link, settings.unsubscribe.mailto), "X-Engagement-Test": "1"},
        categories=("test-send", journey.id),
        custom_args={"test_send_id": sent_id, "journey_id": journey.id, "step_id": step_id},
    )
    try:
        message_id = provider.send(message)
    except SendError as exc:
        with db.begin() as conn:
            conn.execute(
                update(t).where(t.c.id == sent_id).values(status="failed", status_reason=exc.reason[:1000])
            )
        raise RefusedError(f"the {provider.name} provider did not take the test send: {exc.reason}") from exc
    with db.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.id == sent_id)
            .values(status="sent", provider_message_id=message_id, sent_at=now)
        )
    return Sent(sent_id, address, subject, message_id)
