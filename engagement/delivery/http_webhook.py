"""Notify steps over HTTP: POST JSON to the configured URL, through the one retry layer."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from engagement import clock as clocks
from engagement.delivery import retry
from engagement.delivery.message import InDoubt, OutboundWebhook, RateLimited, SendError

FALLBACK = timedelta(seconds=60)  # a 429 that does not say how long to wait


class HttpWebhook:
    """Posts webhook messages with a pooled client, timeouts and backoff on 5xx and connect errors."""

    name = "http"

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        attempts: int = 4,
        base_seconds: float = 0.5,
        max_seconds: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client or httpx.Client()
        self.now = clock or clocks.SystemClock().now  # only to read a Retry-After given as an HTTP date
        self._retry = (attempts, base_seconds, max_seconds, sleep)

    def send(self, message: OutboundWebhook) -> str:
        attempts, base, cap, sleep = self._retry
        return retry.call(lambda: self._post(message), retry.retrying(attempts, base, cap, sleep=sleep))

    def _post(self, message: OutboundWebhook) -> str:
        headers = {"Idempotency-Key": message.delivery_id, **message.headers}
        try:
            response = self.client.post(
                message.url, json=message.payload, headers=headers, timeout=message.timeout_seconds
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise retry.Transient(f"{message.name}: {exc!r}") from exc
        except httpx.HTTPError as exc:  # sent, but no answer: the receiver may have acted on it
            raise InDoubt(f"{message.name}: {exc!r} after the request was sent") from exc
        if response.status_code >= 500:
            raise retry.Transient(f"{message.name}: HTTP {response.status_code} {response.text[:200]}")
        if response.status_code == 429:  # Slack's rate limit: wait as long as it says, then send once
            wait = retry.retry_after(response.headers.get("Retry-After", ""), self.now())
            raise RateLimited(
                f"{message.name}: HTTP 429 {response.text[:200]}".rstrip(),
                wait if wait is not None else FALLBACK,
            )
        if response.status_code >= 400:
            raise SendError(
                f"{message.name}: HTTP {response.status_code} {response.text[:200]}", permanent=True
            )
        return message.delivery_id
