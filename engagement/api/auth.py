"""Who may call the API: write keys (intake), server keys (everything) and per-contact in-app tokens.

- A write key is sent as the HTTP Basic username, as Segment's SDKs do (the body's `writeKey`
  is the intake routes' fallback).
- A server key is sent as `Authorization: Bearer KEY`.
- An in-app token is what the host product mints for one contact so a browser can read that
  contact's nudges and nothing else: the hex HMAC-SHA256 of the contact id with
  `inapp.token_secret`. It is sent as `Authorization: Bearer TOKEN`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from fastapi import Depends, HTTPException, Request, status

from engagement.api.deps import Services, services


def _scheme_value(request: Request, scheme: str) -> str | None:
    header = request.headers.get("authorization", "")
    name, _, value = header.partition(" ")
    if name.lower() != scheme.lower() or not value.strip():
        return None
    return value.strip()


def basic_username(request: Request) -> str | None:
    """The username of an `Authorization: Basic` header, or None when there is none or it is malformed."""
    encoded = _scheme_value(request, "basic")
    if encoded is None:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def bearer(request: Request) -> str | None:
    """The credential of an `Authorization: Bearer` header, or None."""
    return _scheme_value(request, "bearer")


def _known(candidate: str | None, keys: list[str]) -> bool:
    if not candidate:
        return False
    encoded = candidate.encode("utf-8")
    # Compare against every key so the time taken does not say which one nearly matched.
    return sum(hmac.compare_digest(encoded, key.encode("utf-8")) for key in keys) > 0


def unauthorized(message: str, scheme: str = "Bearer") -> HTTPException:
    """A 401 with a plain message and the scheme the caller should use."""
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": scheme})


def check_write_key(found: Services, key: str | None) -> None:
    """Raise 401 unless `key` is one of `api.write_keys`."""
    keys = found.settings.api.write_keys
    if not keys:
        raise unauthorized("intake is closed: no write keys are configured (api.write_keys)", "Basic")
    if not _known(key, keys):
        raise unauthorized("a valid write key is required as the HTTP Basic username", "Basic")


def is_server_key(found: Services, credential: str | None) -> bool:
    """Whether `credential` is one of `api.server_keys`."""
    return _known(credential, found.settings.api.server_keys)


def require_server_key(request: Request, found: Services = Depends(services)) -> None:
    """FastAPI dependency: the caller presents a server key as a Bearer token."""
    if not is_server_key(found, bearer(request)):
        raise unauthorized("a server key is required: Authorization: Bearer KEY (api.server_keys)")


def contact_token(contact_id: str, secret: str) -> str:
    """The in-app token for one contact: hex HMAC-SHA256 of the contact id with `inapp.token_secret`."""
    return hmac.new(secret.encode("utf-8"), contact_id.encode("utf-8"), hashlib.sha256).hexdigest()


def is_contact_token(found: Services, credential: str | None, contact_id: str) -> bool:
    """Whether `credential` is this contact's in-app token."""
    expected = contact_token(contact_id, found.settings.inapp.token_secret)
    return credential is not None and hmac.compare_digest(
        credential.encode("utf-8"), expected.encode("utf-8")
    )


CONTACT_ACCESS = "a server key or this contact's in-app token is required: Authorization: Bearer …"


def require_contact_access(request: Request, found: Services, contact_id: str) -> None:
    """Raise 401 unless the caller holds a server key or this contact's in-app token."""
    credential = bearer(request)
    if not is_server_key(found, credential) and not is_contact_token(found, credential, contact_id):
        raise unauthorized(CONTACT_ACCESS)
