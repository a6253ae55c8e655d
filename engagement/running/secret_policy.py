"""The signing secrets a reachable server must not run with: the published default, empty or short ones.

`unsubscribe.secret`, `inapp.token_secret` and `reports.session_secret` sign unsubscribe links, in-app
tokens and dashboard cookies; with the default anyone could mint them. `webhooks.stripe.secret` checks
Stripe's events: unset, the Stripe webhook is off (503, like SendGrid's with no public key, which is a
public key and no secret); set, it is held to the same rule, since with a guessable one anyone could
forge revenue. `serve`, `run` and `worker` refuse
to start with such a secret unless the server is for local use: bound to a loopback address, with a
loopback `server.public_url` (a loopback bind behind a reverse proxy serves the world). Then they warn.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from engagement import errors
from engagement.config import DEV_SECRET, Settings

MIN_LENGTH = 32
KEYS = ("unsubscribe.secret", "inapp.token_secret", "reports.session_secret")
WHEN_SET = ("webhooks.stripe.secret",)  # weak only when given: unset turns its webhook off
MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class WeakSecrets(errors.ConfigError):
    """A signing secret is the published default, empty or short; set a long random one for each key named."""


def _value(settings: Settings, key: str) -> str | None:
    value: object = settings
    for name in key.split("."):
        value = getattr(value, name)
    return None if value is None else str(value)


def weak(settings: Settings) -> list[str]:
    """The secret keys whose value is the published default, empty, or shorter than MIN_LENGTH."""
    found = []
    for key in (*KEYS, *WHEN_SET):
        value = _value(settings, key)
        if value is None and key in WHEN_SET:
            continue
        if value is None or value == DEV_SECRET or len(value.strip()) < MIN_LENGTH:
            found.append(key)
    return found


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only ever reaches this machine."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_use(settings: Settings, host: str) -> bool:
    """Bound to loopback and announced on a loopback URL: a laptop, not a service others reach."""
    public = urlsplit(settings.server.public_url).hostname or ""
    return is_loopback(host) and is_loopback(public)


def check(settings: Settings, host: str, command: str) -> str | None:
    """Raise WeakSecrets for weak secrets on a reachable server; for local use, return a warning (else None)."""
    found = weak(settings)
    if not found:
        return None
    listed = ", ".join(f"{key} (ENGAGEMENT_{key.upper().replace('.', '__')})" for key in found)
    problem = f"{listed}: the published default, empty or shorter than {MIN_LENGTH} characters"
    if not local_use(settings, host):
        raise WeakSecrets(
            f"`engagement {command}` refuses to start on {host} (public URL {settings.server.public_url}) with "
            f"weak signing secrets: {problem}. Anyone could mint unsubscribe links, in-app tokens, "
            f"dashboard sessions or Stripe events with them. Set each to a long random value, e.g. `{MAKE_ONE}`; "
            "only a server bound to loopback with a loopback server.public_url runs without."
        )
    return (
        f"WARNING: weak signing secrets: {problem}. Acceptable on this machine only (bound to {host}); "
        f"never serve them on a reachable address. Make real ones with `{MAKE_ONE}`."
    )
