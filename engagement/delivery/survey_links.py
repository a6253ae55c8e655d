"""Survey links: the score scales, and signed tokens that name one survey delivery until they expire.

Signed like unsubscribe links (HMAC-SHA256 with `unsubscribe.secret`, whose strength `running/secret_policy.py`
enforces), with a `survey:` prefix in the signed text so one kind of token never passes for the other. A
token carries its last valid day; `surveys.link_days` (default 60) after the email was sent it shows an
"expired" page and records nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engagement import errors, vocab
from engagement.delivery.unsubscribe import b64, unb64

SCALES = {vocab.SurveyKind.NPS: range(0, 11), vocab.SurveyKind.CSAT: range(1, 6)}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadSurveyLink(errors.EngagementError):
    """This survey link is not valid: it was altered or cut short."""


class ExpiredSurveyLink(BadSurveyLink):
    """This survey link has expired."""


@dataclass(frozen=True)
class Link:
    """What a valid token says: the delivery it names and its last valid moment."""

    delivery_id: str
    expires_at: datetime


def scale(kind: str) -> range:
    """The scores a survey of this kind takes: NPS 0 to 10, CSAT 1 to 5."""
    return SCALES[vocab.SurveyKind(kind)]


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), b"survey:" + payload, hashlib.sha256).digest()[:16]


def make_token(delivery_id: str, secret: str, expires_at: datetime) -> str:
    """A URL-safe token naming the delivery, valid until `expires_at` (kept to the second)."""
    payload = f"{delivery_id}|{int((expires_at - EPOCH).total_seconds())}".encode()
    return f"{b64(payload)}.{b64(_mac(secret, payload))}"


def read_token(token: str, secret: str, now: datetime) -> Link:
    """The delivery a token names; BadSurveyLink if it was altered, ExpiredSurveyLink after its time."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = unb64(payload_text)
        if not hmac.compare_digest(_mac(secret, payload), unb64(mac_text)):
            raise BadSurveyLink()
        delivery_id, _, seconds = payload.decode("utf-8").rpartition("|")
        expires_at = EPOCH + timedelta(seconds=int(seconds))
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise BadSurveyLink() from exc
    if not delivery_id:
        raise BadSurveyLink()
    if now > expires_at:
        raise ExpiredSurveyLink()
    return Link(delivery_id, expires_at)


def score_urls(public_url: str, token: str, kind: str) -> list[tuple[int, str]]:
    """(score, link) for every score of the scale: `{public_url}/s/{token}/{score}`."""
    base = f"{public_url.rstrip('/')}/s/{token}"
    return [(score, f"{base}/{score}") for score in scale(kind)]
