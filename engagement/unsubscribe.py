"""Signed unsubscribe tokens and the RFC 8058 headers that carry them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from engagement import errors


class BadToken(errors.EngagementError):
    """The unsubscribe link is invalid or was altered."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(contact_id: str, secret: str) -> str:
    """A URL-safe token naming the contact, with an HMAC-SHA256 signature."""
    payload = contact_id.encode("utf-8")
    mac = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(mac)}"


def read_token(token: str, secret: str) -> str:
    """The contact id inside a token; raise BadToken if the signature does not match."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = _unb64(payload_text)
        expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(expected, _unb64(mac_text)):
            raise BadToken()
        return payload.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken() from exc


def url(public_url: str, contact_id: str, secret: str) -> str:
    """The one-click unsubscribe URL for a contact."""
    return f"{public_url.rstrip('/')}/unsubscribe/{make_token(contact_id, secret)}"


def headers(link: str, mailto: str | None) -> dict[str, str]:
    """List-Unsubscribe (https, plus mailto if configured) and List-Unsubscribe-Post."""
    targets = [f"<{link}>"] + ([f"<mailto:{mailto}?subject=unsubscribe>"] if mailto else [])
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
