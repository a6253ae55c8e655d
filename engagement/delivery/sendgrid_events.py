"""SendGrid's Event Webhook: the signature check, the typed events, and their meaning in our vocabulary.

`verify` checks the ECDSA signature SendGrid puts over `timestamp + raw body`. `interpret` is pure:
one SendGrid event in, one `EmailEvent` (or None for kinds we do not record) out.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader

from engagement import errors, values, vocab
from engagement.responses.email_events import EmailEvent

SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
# the custom_args our outgoing messages carry (delivery/dispatch.py); SendGrid echoes them as top-level fields
DELIVERY_ARG = "delivery_id"

# SendGrid's event names for the kinds we record, and their responses in our vocabulary (the one place
# SendGrid's names are read); processed, group_resubscribe and the rest are not recorded
KINDS = {
    "delivered": vocab.ResponseKind.DELIVERED,
    "open": vocab.ResponseKind.OPEN,
    "click": vocab.ResponseKind.CLICK,
    "bounce": vocab.ResponseKind.BOUNCE,
    "dropped": vocab.ResponseKind.DROPPED,
    "deferred": vocab.ResponseKind.DEFERRED,
    "spamreport": vocab.ResponseKind.SPAMREPORT,
    "unsubscribe": vocab.ResponseKind.UNSUBSCRIBE,
    "group_unsubscribe": vocab.ResponseKind.GROUP_UNSUBSCRIBE,
}
# the delivery status each response shows
STATUS = {
    vocab.ResponseKind.DELIVERED: vocab.DeliveryStatus.DELIVERED,
    vocab.ResponseKind.OPEN: vocab.DeliveryStatus.DELIVERED,  # an open or a click proves the message arrived
    vocab.ResponseKind.CLICK: vocab.DeliveryStatus.DELIVERED,
    vocab.ResponseKind.SPAMREPORT: vocab.DeliveryStatus.DELIVERED,
    vocab.ResponseKind.UNSUBSCRIBE: vocab.DeliveryStatus.DELIVERED,
    vocab.ResponseKind.GROUP_UNSUBSCRIBE: vocab.DeliveryStatus.DELIVERED,
    vocab.ResponseKind.DEFERRED: vocab.DeliveryStatus.DEFERRED,
    vocab.ResponseKind.BOUNCE: vocab.DeliveryStatus.BOUNCED,
    vocab.ResponseKind.DROPPED: vocab.DeliveryStatus.DROPPED,
}
# SendGrid's reasons for dropping a message that mean the address itself must not be mailed again
DROPPED_SUPPRESSES = {
    "bounced address": "bounce",
    "invalid": "bounce",
    "spam reporting address": "complaint",
    "unsubscribed address": "unsubscribe",
}


class BadKey(errors.ConfigError):
    """webhooks.sendgrid.public_key is not a base64 EC public key: copy it from SendGrid's Mail Settings."""


class SendgridEvent(BaseModel):
    """One event as SendGrid posts it (the fields we use; our custom_args arrive as top-level fields)."""

    model_config = ConfigDict(extra="ignore")

    event: str = Field(min_length=1, max_length=40)
    timestamp: int = Field(ge=int(values.EARLIEST.timestamp()), lt=int(values.LATEST.timestamp()))
    email: str | None = Field(None, max_length=320)
    sg_event_id: str | None = Field(None, max_length=200)
    sg_message_id: str | None = Field(None, max_length=300)
    delivery_id: str | None = Field(None, max_length=36)
    url: str | None = None
    reason: str | None = None
    type: str | None = None
    status: str | None = None
    attempt: str | int | None = None
    asm_group_id: int | None = None


# a value of the right type but out of range: that event is skipped, the rest of the batch applied
OUT_OF_RANGE = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "string_too_long",
        "string_too_short",
        "int_parsing_size",
        "finite_number",
    }
)
Loc = list[str | int]
EVENTS = TypeAdapter(list[SendgridEvent])


@dataclass
class Parsed:
    """A batch's events, and the ones skipped for a value out of range (location, message)."""

    events: list[SendgridEvent] = field(default_factory=list)
    skipped: list[tuple[Loc, str]] = field(default_factory=list)


class BadBatch(errors.EngagementError, ValueError):
    """The body is not a list of SendGrid events: a wrong type or a missing field (`problems` name them)."""

    def __init__(self, problems: list[tuple[Loc, str, str]]) -> None:
        super().__init__(self.__doc__)
        self.problems = problems  # (location, message, pydantic error type)


def parse(raw: bytes) -> Parsed:
    """The events of a webhook body. Bad JSON is a ValueError (UnicodeDecodeError for bytes that are not
    UTF-8); a wrong type is BadBatch; an event with a value out of range (a timestamp SendGrid could not
    have meant, NaN, a lone surrogate, a string over its cap) is skipped, so SendGrid, which retries a
    refused batch for a day, does not retry the good events with it."""
    if b"NaN" not in raw and b"Infinity" not in raw:  # JSON's lookalikes, which the fast parser takes
        try:
            fast = EVENTS.validate_json(raw)  # the usual batch, parsed in one go (it refuses lone surrogates)
        except ValidationError:
            pass  # the slow path below says what is wrong, event by event
        else:
            parsed = Parsed()
            for index, event in enumerate(fast):
                kept = _kept_problem(event, index)
                if kept is None:
                    parsed.events.append(event)
                else:
                    parsed.skipped.append(kept)
            return parsed
    doc = values.loads(raw)
    if not isinstance(doc, list):
        raise BadBatch([([], "must be a JSON array of events", "list_type")])
    parsed = Parsed()
    wrong: list[tuple[Loc, str, str]] = []
    for index, item in enumerate(doc):
        hostile = values.problem(item, [index])
        if hostile is not None:
            parsed.skipped.append(hostile)
            continue
        try:
            event = SendgridEvent.model_validate(item)
        except ValidationError as exc:
            found = [([index, *e["loc"]], e["msg"], e["type"]) for e in exc.errors()]
            if all(kind in OUT_OF_RANGE for _, _, kind in found):
                parsed.skipped.extend((loc, msg) for loc, msg, _ in found[:1])
            else:
                wrong.extend(found)
            continue
        parsed.events.append(event)
    if wrong:
        raise BadBatch(wrong)
    return parsed


def _kept_problem(event: SendgridEvent, index: int) -> tuple[Loc, str] | None:
    """A NUL in a field we keep, or a whole number beyond 64 bits (what the fast parser lets through)."""
    for name, value in event.__dict__.items():
        kind = type(value)
        if kind is str and (not value.isascii() or "\x00" in value):
            wrong = values.text_problem(value)
            if wrong is not None:
                return [index, name], wrong
        elif kind is int and not -values.MAX_INT - 1 <= value <= values.MAX_INT:
            return [index, name], "a whole number must fit in 64 bits"
    return None


@functools.lru_cache(maxsize=4)
def public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 form (as SendGrid shows it)."""
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(text.strip())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BadKey() from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BadKey()
    return key


def verify(key_text: str, body: bytes, signature: str, timestamp: str) -> bool:
    """Whether `signature` is SendGrid's ECDSA-SHA256 signature over `timestamp + body`."""
    key = public_key(key_text)
    try:
        return bool(EventWebhook().verify_signature(body.decode("utf-8"), signature, timestamp, key))
    except (UnicodeDecodeError, binascii.Error, ValueError, InvalidSignature):
        return False


def interpret(event: SendgridEvent) -> EmailEvent | None:
    """The event in our vocabulary, or None for kinds we do not record (processed, group_resubscribe…)."""
    kind = KINDS.get(event.event)
    if kind is None:
        return None
    delivery_id = event.delivery_id or None
    message_id = event.sg_message_id.split(".", 1)[0] if event.sg_message_id else None
    occurrence = f"{kind}:{event.timestamp}"
    if kind == vocab.ResponseKind.CLICK and event.url:  # two links clicked in the same second are two clicks
        occurrence += ":" + hashlib.sha256(event.url.encode()).hexdigest()[:16]
    return EmailEvent(
        provider="sendgrid",
        kind=kind,
        occurred_at=datetime.fromtimestamp(event.timestamp, tz=UTC),
        delivery_id=delivery_id,
        message_id=message_id,
        email=event.email,
        status=STATUS[kind],
        suppress=_suppression(event),
        occurrence=occurrence,
        provider_event_id=f"sendgrid:{event.sg_event_id}" if event.sg_event_id else None,
        data=_data(event),
    )


def _suppression(event: SendgridEvent) -> str | None:
    kind = KINDS.get(event.event)
    if kind == vocab.ResponseKind.BOUNCE:
        return None if (event.type or "").lower() == "blocked" else "bounce"  # a block is not a bad address
    if kind == vocab.ResponseKind.DROPPED:
        return DROPPED_SUPPRESSES.get((event.reason or "").strip().lower())
    if kind == vocab.ResponseKind.SPAMREPORT:
        return "complaint"
    if kind in (vocab.ResponseKind.UNSUBSCRIBE, vocab.ResponseKind.GROUP_UNSUBSCRIBE):
        return "unsubscribe"
    return None


def _data(event: SendgridEvent) -> dict[str, Any]:
    """What is worth keeping of the event (no IP address or user agent)."""
    fields = {
        "url": event.url,
        "reason": event.reason,
        "type": event.type,
        "status": event.status,
        "attempt": event.attempt,
        "asm_group_id": event.asm_group_id,
        "sg_message_id": event.sg_message_id,
    }
    return {k: v for k, v in fields.items() if v is not None}
