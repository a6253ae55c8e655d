"""The closed sets of words the engine stores and compares, each defined once.

The values are what the database holds; the schema's CHECK constraints are built from these sets.
"""

from __future__ import annotations

from enum import StrEnum


class HoldCode(StrEnum):
    """Why a queued delivery waits past its due time; reports count these, not the reason text."""

    SEND_WINDOW = "send_window"
    WEEKLY_CAP = "weekly_cap"
    PROVIDER_RATE_LIMIT = "provider_rate_limit"  # the email provider's 429, or its pause still running
    WEBHOOK_RATE_LIMIT = "webhook_rate_limit"
