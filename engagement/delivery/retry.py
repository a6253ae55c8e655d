"""The one retry layer: exponential backoff with jitter for failures where nothing was accepted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from engagement.delivery.message import SendError

T = TypeVar("T")


class Transient(Exception):
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
