"""The shipped fake: records what would have been sent (tests and `simulate`)."""

from __future__ import annotations

from engagement.delivery.message import OutboundEmail, OutboundWebhook


class RecordingEmail:
    """Keeps every email in memory instead of sending it."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutboundEmail] = []

    def send(self, message: OutboundEmail) -> str:
        self.sent.append(message)
        return f"recorded-{message.delivery_id}"


class RecordingWebhook:
    """Keeps every webhook message in memory instead of posting it."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutboundWebhook] = []

    def send(self, message: OutboundWebhook) -> str:
        self.sent.append(message)
        return f"recorded-{message.delivery_id}"


class CountingEmail:
    """Counts emails and keeps only their ids (dry runs over many contacts stay small)."""

    name = "counting"

    def __init__(self) -> None:
        self.count = 0

    def send(self, message: OutboundEmail) -> str:
        self.count += 1
        return f"counted-{message.delivery_id}"
