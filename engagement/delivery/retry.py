"""The one retry layer: exponential backoff with jitter for failures where nothing was accepted."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypeVar

import tenacity

from engagement import clock as clocks
from engagement import errors
from engagement.delivery.message import SendError

T = TypeVar("T")


class Transient(errors.EngagementError):
    """A failure where the provider certainly kept nothing (not connected, or a 5xx): worth another try."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def retrying(
    attempts: int, base: float, cap: float, *, sleep: Callable[[float], None] = time.sleep
) -> tenacity.Retrying:
    """Up to `attempts` tries on `Transient`, waiting base·2ⁿ plus up to `base` of jitter, at most `cap`.

    Every other exception (a permanent refusal, a rate limit, a request in doubt) passes straight through.
    """
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, attempts)),
        wait=tenacity.wait_exponential_jitter(multiplier=base, jitter=base, max=cap),
        retry=tenacity.retry_if_exception_type(Transient),
        sleep=sleep,
        reraise=True,
    )


def call(fn: Callable[[], T], policy: tenacity.Retrying) -> T:
    """Run `fn` under `policy`; when the tries run out, raise a non-permanent SendError with the last reason."""
    try:
        return policy(fn)
    except Transient as exc:
        tries = policy.statistics.get("attempt_number", 1)
        tried = f"{tries} attempts" if tries != 1 else "1 attempt"
        raise SendError(f"{exc.reason} (gave up after {tried})", permanent=False) from exc


def retry_after(value: str, now: datetime) -> timedelta | None:
    """A `Retry-After` header as a wait from `now` (when the answer arrived): delay-seconds or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except (ValueError, OverflowError):
        pass
    try:
        return max(clocks.as_utc(parsedate_to_datetime(value)) - now, timedelta(0))
    except (TypeError, ValueError, IndexError):
        return None
