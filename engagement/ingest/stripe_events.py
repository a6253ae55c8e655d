"""Stripe's subscription webhook events: the signature check, the typed event, and the MRR it leaves.

`verify` checks `Stripe-Signature` with Stripe's own library; the freshness of its timestamp is judged
against the engine's clock by the caller (`signed_at`). `interpret` is pure: one event in, the subscription
change it means (or None for event types we do not read) out.

MRR of a subscription: the sum over its items of `price.unit_amount * quantity / 100`, made monthly. A
price billed every `interval_count` intervals pays that amount once per `interval_count * interval`, so
per month it is the amount ÷ `interval_count` * the intervals in a month (month 1, year 1/12, week 52/12,
day 365/12). Ended subscriptions (`deleted`, status `canceled` or `incomplete_expired`) count 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import stripe
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engagement import errors, values

SIGNATURE_HEADER = "Stripe-Signature"
CREATED = "customer.subscription.created"
UPDATED = "customer.subscription.updated"
DELETED = "customer.subscription.deleted"
SUBSCRIPTION_EVENTS = frozenset({CREATED, UPDATED, DELETED})
ENDED = frozenset({"canceled", "incomplete_expired"})  # statuses that pay nothing (Stripe's words)
PER_MONTH = {  # how many of each interval fit in a month
    "month": Decimal(1),
    "year": Decimal(1) / 12,
    "week": Decimal(52) / 12,
    "day": Decimal(365) / 12,
}
ACCOUNT_FIELD: list[str | int] = ["data", "object", "metadata", "account_id"]


class BadEvent(errors.EngagementError, ValueError):
    """A signed Stripe event whose fields do not fit; `problems` name each (location, message, type)."""

    def __init__(self, problems: list[tuple[list[str | int], str, str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg, _ in problems))
        self.problems = problems


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Recurring(_Part):
    """How often a price bills."""

    interval: Literal["day", "week", "month", "year"]
    interval_count: int = Field(1, ge=1, le=1000)


class Price(_Part):
    """A subscription item's price; tiered prices give only `unit_amount_decimal`, metered ones neither."""

    unit_amount: int | None = Field(None, ge=0)
    unit_amount_decimal: Decimal | None = Field(None, ge=0, allow_inf_nan=False)
    recurring: Recurring


class Item(_Part):
    """One line of a subscription."""

    price: Price
    quantity: int | None = Field(1, ge=0)


class Items(_Part):
    data: list[Item] = []


class Subscription(_Part):
    """The fields of a Stripe subscription we read."""

    id: str = Field(min_length=1, max_length=255)
    status: str = Field(min_length=1, max_length=40)
    metadata: dict[str, Any] = {}
    items: Items = Items()


class Data(_Part):
    object: dict[str, Any]


class Event(_Part):
    """A Stripe event envelope; `data.object` is typed only for the subscription events."""

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100)
    created: int = Field(ge=int(values.EARLIEST.timestamp()), lt=int(values.LATEST.timestamp()))
    data: Data


@dataclass(frozen=True)
class Change:
    """What one subscription event says: from `created` on, this subscription adds `mrr` to this account."""

    event_id: str
    type: str
    created: datetime
    subscription_id: str
    account_id: str
    status: str
    mrr: float


def verify(raw: bytes, header: str, secret: str) -> bool:
    """Whether `header` holds a v1 signature of `raw` under `secret` (Stripe's library; no time check here)."""
    try:
        stripe.WebhookSignature.verify_header(raw, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        return False
    return True


def signed_at(header: str) -> datetime | None:
    """The `t=` timestamp of a `Stripe-Signature` header, or None if it has none that reads."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                return datetime.fromtimestamp(int(value), tz=UTC)
            except (ValueError, OverflowError, OSError):
                return None
    return None


def parse(doc: Any) -> Event:
    """The event envelope of a decoded body; BadEvent naming the fields that do not fit."""
    try:
        return Event.model_validate(doc)
    except ValidationError as exc:
        raise BadEvent(_problems(exc, [])) from exc


def interpret(event: Event) -> Change | None:
    """The subscription change a subscription event means; None for other event types."""
    if event.type not in SUBSCRIPTION_EVENTS:
        return None
    try:
        subscription = Subscription.model_validate(event.data.object)
    except ValidationError as exc:
        raise BadEvent(_problems(exc, ["data", "object"])) from exc
    account = subscription.metadata.get("account_id")
    if account is None or account == "":
        raise BadEvent(
            [(ACCOUNT_FIELD, "required: the engine's account id, set on the subscription", "missing")]
        )
    wrong = values.id_problem(account) if isinstance(account, str) else "must be a string"
    if wrong is not None:
        raise BadEvent([(ACCOUNT_FIELD, wrong, "value_error")])
    ended = event.type == DELETED or subscription.status in ENDED
    return Change(
        event_id=event.id,
        type=event.type,
        created=datetime.fromtimestamp(event.created, tz=UTC),
        subscription_id=subscription.id,
        account_id=account,
        status=subscription.status,
        mrr=0.0 if ended else mrr(subscription),
    )


def mrr(subscription: Subscription) -> float:
    """The subscription's monthly recurring revenue in the price's currency units (not cents)."""
    return float(sum((monthly(item) for item in subscription.items.data), Decimal(0)))


def monthly(item: Item) -> Decimal:
    """One item's amount a month: unit amount * quantity in cents, over its billing period, in units."""
    price = item.price
    unit = Decimal(price.unit_amount) if price.unit_amount is not None else price.unit_amount_decimal
    if unit is None:  # metered usage: nothing recurring is known in advance
        return Decimal(0)
    quantity = 1 if item.quantity is None else item.quantity
    recurring = price.recurring
    return unit * quantity / 100 * PER_MONTH[recurring.interval] / recurring.interval_count


def _problems(exc: ValidationError, prefix: list[str | int]) -> list[tuple[list[str | int], str, str]]:
    return [([*prefix, *err["loc"]], err["msg"], err["type"]) for err in exc.errors()]
