"""Notify steps over HTTP: POST JSON to the configured URL."""

from __future__ import annotations

import httpx

from engagement.delivery.message import OutboundWebhook, SendError


class HttpWebhook:
    """Posts webhook messages with a pooled client and a timeout."""

    name = "http"

    def __init__(self, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client()

    def send(self, message: OutboundWebhook) -> str:
        headers = {"Idempotency-Key": message.delivery_id, **message.headers}
        try:
            response = self.client.post(
                message.url, json=message.payload, headers=headers, timeout=message.timeout_seconds
            )
        except httpx.HTTPError as exc:
            raise SendError(f"{message.name}: {exc}", permanent=False) from exc
        if response.status_code >= 400:
            raise SendError(
                f"{message.name}: HTTP {response.status_code} {response.text[:200]}",
                permanent=400 <= response.status_code < 500 and response.status_code != 429,
            )
        return message.delivery_id
