"""Dashboard logins: scrypt password hashes and the signed session cookie.

A hash reads `scrypt$N$r$p$SALT$KEY` (base64 salt and key). The cookie holds the user name and
an expiry, signed with HMAC-SHA256 under `reports.session_secret`; nothing is stored server-side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

COOKIE = "engagement_session"
N, R, P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A scrypt hash of `password` to paste into `reports.users`."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=32)
    return "$".join(("scrypt", str(N), str(R), str(P), _b64(salt), _b64(key)))


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches a hash made by hash_password (a malformed hash never matches)."""
    try:
        name, n, r, p, salt, key = stored.split("$")
        if name != "scrypt":
            return False
        expected = base64.b64decode(key)
        found = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(found, expected)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _sign(payload: str, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), payload.encode("ascii"), hashlib.sha256).hexdigest()


def session_cookie(user: str, secret: str, now: datetime, lifetime: timedelta) -> str:
    """A cookie value saying `user` is logged in until now + lifetime."""
    body = json.dumps({"u": user, "exp": int((now + lifetime).timestamp())}, separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode("utf-8")).decode("ascii")
    return f"{payload}.{_sign(payload, secret)}"


def session_user(cookie: str | None, secret: str, now: datetime) -> str | None:
    """The user a cookie vouches for, or None when it is missing, forged or expired."""
    if not cookie or "." not in cookie or not cookie.isascii():  # ours are ASCII; anything else is forged
        return None
    payload, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature.encode("ascii", "replace"), _sign(payload, secret).encode("ascii")):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
        user, expires = str(body["u"]), int(body["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    return user if now.timestamp() < expires else None
