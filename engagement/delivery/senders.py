"""Email sends of one claimed batch, kept in flight while the dispatcher renders the next message.

A provider that declares `concurrency` > 1 (SendGrid: one keep-alive connection per thread) gets that many
sender threads; any other is called inline, one message at a time, as before. Every message handed over
here is already committed `sending`, so a crash leaves no more in doubt than the claimed batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from types import TracebackType

from engagement.delivery.message import EmailProvider, OutboundEmail, RateLimited

RATE_LIMIT_FLOOR = timedelta(seconds=1)  # the shortest pause after a 429, whatever its headers say


class Pause:
    """Until when the email provider asked us to wait, on the engine's clock; set by whichever sender heard it.

    `since` is when the pause was heard (for a pause read back from the database: when this pass began), so
    `length` is how long it lasts from then.
    """

    def __init__(self, until: datetime | None, since: datetime) -> None:
        self.until = until
        self.since = min(since, until) if until is not None else since
        self._lock = threading.Lock()

    def active(self, at: datetime) -> bool:
        """Whether emails must wait at `at` (the engine's clock)."""
        return self.until is not None and self.until > at

    @property
    def length(self) -> timedelta:
        """How long the pause lasts from when it was heard."""
        return self.until - self.since if self.until is not None else timedelta(0)

    def extend(self, exc: RateLimited, at: datetime) -> datetime:
        """Pause for the provider's wait (at least `RATE_LIMIT_FLOOR`) from `at`, the engine's clock when the
        answer came; return the pause's end.

        A wait of zero (a reset already past: clocks differ) must still end this pass's emails, or we would
        hammer.
        """
        until = at + max(exc.wait, RATE_LIMIT_FLOOR)
        with self._lock:
            if self.until is None or self.until < until:
                self.until, self.since = until, at
        return until


class Senders:
    """Hands emails to the provider: inline, or on `provider.concurrency` threads.

    The first email of a batch goes alone, so a provider that is rate limiting or refusing us answers once
    rather than once per thread. A message whose turn comes while the provider has asked us to wait is not
    sent: its future's result is None (held). After a 429, at most `concurrency - 1` requests already in
    flight still reach the provider.
    """

    def __init__(self, provider: EmailProvider, pause: Pause, clock: Callable[[], datetime]) -> None:
        self.provider = provider
        self.pause = pause
        self.clock = clock
        width = max(1, int(getattr(provider, "concurrency", 1)))
        self._pool = ThreadPoolExecutor(width, thread_name_prefix="email-send") if width > 1 else None
        self._first = True

    def submit(self, email: OutboundEmail) -> Future[str | None]:
        """Start sending `email`; the future holds the provider's message id, None if held, or the error."""
        if self._pool is not None and not self._first:
            return self._pool.submit(self._deliver, email)
        self._first = False
        done: Future[str | None] = Future()
        try:
            done.set_result(self._deliver(email))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def _deliver(self, email: OutboundEmail) -> str | None:
        if self.pause.active(self.clock()):
            return None
        try:
            return self.provider.send(email)
        except RateLimited as exc:
            self.pause.extend(exc, self.clock())
            raise

    def close(self) -> None:
        """Wait for every email handed over."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> Senders:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
