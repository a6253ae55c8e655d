"""Dashboard sessions end for real: at logout, at expiry on the app's clock, and when their user, password,
server key or the session secret goes; one server process's session works in another (same database)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from engine_world import NOW, World
from test_report_dashboard import csrf_token

from engagement import config
from engagement.api import logins
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.testing.served import served

BACKENDS = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"
SERVER_KEY = "sk-dashboard-" + "k" * 24
JSON = "/v1/reports/engagement"


@pytest.fixture(scope="module")
def hashed() -> str:
    return logins.hash_password(PASSWORD)


def _settings(world: World, hashed: str, **reports: Any) -> config.Settings:
    world.configure(f'[api]\nserver_keys = ["{SERVER_KEY}"]\n')
    users = reports.pop("users", {"maria": hashed})
    return world.settings.model_copy(
        update={"reports": world.settings.reports.model_copy(update={"users": users, **reports})}
    )


def _with(settings: config.Settings, **changes: Any) -> config.Settings:
    """The settings with some `reports` or `api` fields changed, as after an edit of config.toml."""
    reports = {k: v for k, v in changes.items() if k in config.Reports.model_fields}
    api = {k: v for k, v in changes.items() if k in config.Api.model_fields}
    return settings.model_copy(
        update={
            "reports": settings.reports.model_copy(update=reports),
            "api": settings.api.model_copy(update=api),
        }
    )


@contextmanager
def site(world: World, settings: config.Settings, clock: ManualClock | None = None) -> Iterator[str]:
    with served(create_app(settings, database=world.db, clock=clock or ManualClock(NOW))) as url:
        yield url


def _login(url: str, username: str, password: str) -> str:
    """Log in as a browser would; the session cookie's value."""
    with httpx.Client() as client:
        data = {"username": username, "password": password, "csrf": csrf_token(client, url)}
        answer = client.post(f"{url}/reports/login", data=data)
        assert answer.status_code == 303, answer.text
        return str(client.cookies[logins.COOKIE])


def _opens(url: str, cookie: str) -> bool:
    answer = httpx.get(f"{url}{JSON}", cookies={logins.COOKIE: cookie})
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def test_a_logged_out_cookie_no_longer_opens_the_dashboard(world: World, hashed: str) -> None:
    settings = _settings(world, hashed)
    with site(world, settings) as url:
        cookie = _login(url, "maria", PASSWORD)
        other = _login(url, "maria", PASSWORD)
        assert _opens(url, cookie)
        with httpx.Client(cookies={logins.COOKIE: cookie}) as client:
            assert client.post(f"{url}/reports/logout").status_code == 303

        assert not _opens(url, cookie)  # a copy of the cookie kept elsewhere is dead too
        assert httpx.get(f"{url}/reports", cookies={logins.COOKIE: cookie}).status_code == 303
        assert _opens(url, other)  # her other session (another browser) goes on


def test_a_removed_user_or_a_changed_password_ends_their_sessions(world: World, hashed: str) -> None:
    settings = _settings(world, hashed, users={"maria": hashed, "li": hashed})
    with site(world, settings) as url:
        maria, li = _login(url, "maria", PASSWORD), _login(url, "li", PASSWORD)
    with site(world, _with(settings, users={"li": hashed})) as url:
        assert not _opens(url, maria) and _opens(url, li)
    with site(world, _with(settings, users={"maria": hashed, "li": logins.hash_password("new one")})) as url:
        assert _opens(url, maria) and not _opens(url, li)


def test_a_server_key_session_ends_when_its_key_is_rotated_out(world: World, hashed: str) -> None:
    settings = _settings(world, hashed)
    with site(world, settings) as url:
        by_key = _login(url, "", SERVER_KEY)
    with site(world, _with(settings, server_keys=["sk-new-" + "n" * 30, SERVER_KEY])) as url:
        assert _opens(url, by_key)  # a second key added: the old one still stands
    with site(world, _with(settings, server_keys=["sk-new-" + "n" * 30])) as url:
        assert not _opens(url, by_key)


def test_a_new_session_secret_ends_every_session(world: World, hashed: str) -> None:
    settings = _settings(world, hashed)
    with site(world, settings) as url:
        cookie = _login(url, "maria", PASSWORD)
    with site(world, _with(settings, session_secret="rotated-" + "r" * 40)) as url:
        assert not _opens(url, cookie)


def test_a_session_opened_in_one_server_process_works_in_another_until_it_expires(
    world: World, hashed: str
) -> None:
    settings = _settings(world, hashed, session_hours=2)
    clock = ManualClock(NOW)
    with site(world, settings, clock) as first, site(world, settings, clock) as second:
        cookie = _login(first, "maria", PASSWORD)
        assert _opens(second, cookie)
        clock.advance(timedelta(hours=2))
        assert not _opens(second, cookie) and not _opens(first, cookie)
