"""Dashboard sessions, kept in the database so they can end: at logout, at expiry, or when what they
were opened with goes away.

The cookie holds a random token (and its HMAC under `reports.session_secret`, so a rotated secret ends
every session); the `dashboard_session` row holds the token's sha256, the user and a fingerprint of the
credential: the user's password hash in `reports.users`, or the server key. A removed user, a changed
password or a server key taken out of `api.server_keys` no longer matches, and the session is over.
Every server process reads the same table.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from engagement.api import logins
from engagement.config import Settings
from engagement.store import schema
from engagement.store.database import Database

COOKIE = logins.COOKIE
SERVER_KEY_USER = "server key"
t = schema.dashboard_sessions


def _mac(secret: str, text: str) -> str:
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def user_credential(settings: Settings, name: str) -> str | None:
    """The fingerprint of a configured user's password hash (None for a name not in `reports.users`)."""
    stored = settings.reports.users.get(name)
    return None if stored is None else _mac(settings.reports.session_secret, f"user\0{name}\0{stored}")


def key_credential(settings: Settings, key: str) -> str:
    """The fingerprint of a server key (never the key itself)."""
    return _mac(settings.reports.session_secret, f"server-key\0{key}")


def _still_valid(settings: Settings, user: str, credential: str) -> bool:
    if user == SERVER_KEY_USER:
        current = [key_credential(settings, key) for key in settings.api.server_keys]
    else:
        current = [found] if (found := user_credential(settings, user)) else []
    return sum(hmac.compare_digest(credential, c) for c in current) > 0


def start(db: Database, settings: Settings, user: str, credential: str, now: datetime) -> str:
    """Open a session for `user` (dropping expired ones) and return the cookie value."""
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.reports.session_hours)
    with db.begin() as conn:
        conn.execute(delete(t).where(t.c.expires_at <= now))
        conn.execute(
            t.insert().values(
                token_hash=_hash(token),
                username=user,
                credential=credential,
                created_at=now,
                expires_at=expires,
            )
        )
    return f"{token}.{_mac(settings.reports.session_secret, token)}"


def _token(settings: Settings, cookie: str | None) -> str | None:
    """The token of a cookie signed under the current secret, else None."""
    if not cookie or "." not in cookie:
        return None
    token, _, signature = cookie.rpartition(".")
    expected = _mac(settings.reports.session_secret, token)
    if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected.encode("ascii")):
        return None
    return token


def user(db: Database, settings: Settings, cookie: str | None, now: datetime) -> str | None:
    """The user a session cookie vouches for, or None: missing, forged, expired, ended or no longer valid."""
    token = _token(settings, cookie)
    if token is None:
        return None
    with db.begin() as conn:
        row = conn.execute(
            select(t.c.username, t.c.credential).where(t.c.token_hash == _hash(token), t.c.expires_at > now)
        ).one_or_none()
    if row is None or not _still_valid(settings, row.username, row.credential):
        return None
    return str(row.username)


def end(db: Database, settings: Settings, cookie: str | None) -> None:
    """End the session a cookie names (logout); a missing or forged cookie ends nothing."""
    token = _token(settings, cookie)
    if token is not None:
        with db.begin() as conn:
            conn.execute(delete(t).where(t.c.token_hash == _hash(token)))


def form_token(settings: Settings, cookie: str | None, form: str) -> str:
    """The CSRF token of one form for one session: an HMAC of the session cookie, so only a page served
    to that session can carry it (the cookie is HttpOnly and SameSite=Lax besides)."""
    return _mac(settings.reports.session_secret, f"form\0{form}\0{cookie or ''}")


def form_token_ok(settings: Settings, cookie: str | None, form: str, sent: str) -> bool:
    """Whether a posted form's token is the one this session's page carried."""
    if not cookie or not sent:
        return False
    expected = form_token(settings, cookie, form)
    return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode("ascii"))
