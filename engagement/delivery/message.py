"""What leaves the engine: one email or one webhook call, provider-neutral."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from engagement import errors


@dataclass(frozen=True)
class OutboundEmail:
    """A rendered email for one recipient, with our ids for the provider to carry back."""

    delivery_id: str
    to: str
    to_name: str
    sender: str
    reply_to: str | None
    subject: str
    html: str
    text: str
    sent_at: datetime | None = None
    headers: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    custom_args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundWebhook:
    """A JSON message for a named webhook."""

    delivery_id: str
    name: str
    url: str
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 5.0


class SendError(errors.EngagementError):
    """A provider refused or failed a message; `permanent` says whether retrying can help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class RateLimited(SendError):
    """The provider asked us to wait `wait` from its answer; nothing may be sent to it before then.

    A duration, not an instant: the provider's headers tell wall-clock time, the engine decides on its own
    clock (`tick --now`, simulations), so the wait is taken at receipt and applied on the engine's clock.
    """

    def __init__(self, reason: str, wait: timedelta, *, heard_at: datetime | None = None) -> None:
        super().__init__(reason, permanent=False)
        self.wait = max(wait, timedelta(0))
        self.heard_at = heard_at

    @property
    def until(self) -> datetime | None:
        """The end of the wait on the provider's own clock, when it said when it answered."""
        return self.heard_at + self.wait if self.heard_at is not None else None


class InDoubt(SendError):
    """The request may have been accepted (e.g. a timeout after it was sent): never retry it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=False)


class EmailProvider(Protocol):
    """Sends one email and returns the provider's message id."""

    name: str

    def send(self, message: OutboundEmail) -> str: ...


class WebhookProvider(Protocol):
    """Delivers one webhook message and returns an id for it."""

    name: str

    def send(self, message: OutboundWebhook) -> str: ...
