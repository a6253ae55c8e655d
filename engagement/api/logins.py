"""Dashboard logins: scrypt password hashes, checked with the same work whether the user exists or not.

A hash reads `scrypt$N$r$p$SALT$KEY` (base64 salt and key). Sessions are in `api/sessions.py`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

COOKIE = "engagement_session"  # the session cookie's name (sessions.py)
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


@functools.cache
def _stand_in() -> str:
    """A hash of a random password, made like a real one: checked when the name is unknown."""
    return hash_password(secrets.token_urlsafe(16))


def check_user(users: dict[str, str], name: str, password: str) -> bool:
    """Whether `name` is a configured user with this password; an unknown name costs the same scrypt work,
    so the time taken does not tell which names exist."""
    stored = users.get(name)
    matches = check_password(password, stored if stored is not None else _stand_in())
    return stored is not None and matches
