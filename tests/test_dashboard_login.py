"""The dashboard login: throttled per user name and per client address (across server processes, on the
app's clock), the same scrypt work for unknown and known names, a capped body and a CSRF-protected form."""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_world import NOW, World
from test_report_dashboard import csrf_token

from engagement import config
from engagement.api import logins
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.store import migrate
from engagement.store.database import Database
from engagement.testing.api_process import ApiProcess
from engagement.testing.served import served

BACKENDS = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hashed() -> str:
    return logins.hash_password(PASSWORD)


def _settings(world: World, hashed: str, **reports: Any) -> config.Settings:
    return world.settings.model_copy(
        update={"reports": world.settings.reports.model_copy(update={"users": {"maria": hashed}, **reports})}
    )


@contextmanager
def site(world: World, settings: config.Settings, clock: ManualClock) -> Iterator[str]:
    with served(create_app(settings, database=world.db, clock=clock)) as url:
        yield url


def attempt(url: str, username: str, password: str, address: str = "198.51.100.7") -> httpx.Response:
    """One login from `address` (uvicorn takes X-Forwarded-For from 127.0.0.1, as behind a local proxy)."""
    with httpx.Client(headers={"X-Forwarded-For": address}, timeout=30) as client:
        data = {"username": username, "password": password, "csrf": csrf_token(client, url)}
        return client.post(f"{url}/reports/login", data=data)


def test_forty_wrong_passwords_are_cut_off_after_five_until_the_window_passes(
    world: World, hashed: str
) -> None:
    clock = ManualClock(NOW)
    with site(world, _settings(world, hashed), clock) as url:
        codes = [attempt(url, "maria", f"guess {i}").status_code for i in range(40)]
        locked = attempt(url, "maria", PASSWORD)
        clock.advance(timedelta(minutes=15))
        after = attempt(url, "maria", PASSWORD)

    assert codes == [401] * 5 + [429] * 35
    assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 900
    assert "Too many attempts" in locked.text
    assert after.status_code == 303


def test_one_address_is_cut_off_after_twenty_attempts_at_any_names_and_others_are_not(
    world: World, hashed: str
) -> None:
    with site(world, _settings(world, hashed), ManualClock(NOW)) as url:
        codes = [attempt(url, f"user-{i}", "guess").status_code for i in range(25)]
        elsewhere = attempt(url, "maria", PASSWORD, address="203.0.113.50")

    assert codes == [401] * 20 + [429] * 5
    assert elsewhere.status_code == 303


def test_parallel_guesses_through_two_server_processes_share_one_count(world: World, hashed: str) -> None:
    clock = ManualClock(NOW)
    settings = _settings(world, hashed)
    with (
        site(world, settings, clock) as first,
        site(world, settings, clock) as second,
        ThreadPoolExecutor(8) as pool,
    ):
        answers = list(
            pool.map(
                lambda i: attempt((first, second)[i % 2], "maria", f"guess {i}", f"10.0.0.{i}"), range(16)
            )
        )
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * 5 + [429] * 11


def test_a_form_without_its_csrf_token_or_with_another_is_refused_before_any_password_check(
    world: World, hashed: str
) -> None:
    with site(world, _settings(world, hashed), ManualClock(NOW)) as url, httpx.Client() as client:
        bare = client.post(f"{url}/reports/login", data={"username": "maria", "password": PASSWORD})
        csrf_token(client, url)  # the client now holds a token cookie, but the form carries another
        other = client.post(
            f"{url}/reports/login", data={"username": "maria", "password": PASSWORD, "csrf": "forged"}
        )
        token = csrf_token(client, url)
        good = client.post(
            f"{url}/reports/login", data={"username": "maria", "password": PASSWORD, "csrf": token}
        )

    assert bare.status_code == 403 and "log in again" in bare.text
    assert other.status_code == 403 and logins.COOKIE not in other.cookies
    assert good.status_code == 303 and logins.COOKIE in good.cookies


def test_a_login_body_over_four_kilobytes_is_refused_unread(world: World, hashed: str) -> None:
    with site(world, _settings(world, hashed), ManualClock(NOW)) as url, httpx.Client() as client:
        token = csrf_token(client, url)
        big = client.post(
            f"{url}/reports/login", data={"username": "maria", "password": "x" * 5000, "csrf": token}
        )
        streamed = client.post(
            f"{url}/reports/login",
            content=iter([b"csrf=" + token.encode() + b"&password=", b"x" * 5000]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        crowded = client.post(f"{url}/reports/login", content="&".join(f"f{i}=1" for i in range(50)))
    assert big.status_code == 413 and "4,096 bytes" in big.json()["detail"]
    assert streamed.status_code == 413
    assert crowded.status_code == 400 and "not the login form" in crowded.text


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the real hashlib.scrypt (still doing the work)."""
    calls: list[int] = []
    real: Callable[..., bytes] = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return calls


def test_an_unknown_name_costs_the_same_scrypt_work_and_time_as_a_known_one(
    world: World, hashed: str, scrypt_calls: list[int]
) -> None:
    logins.check_user({}, "warm-up", "")  # the stand-in hash is made once, before timing
    settings = _settings(world, hashed, login_attempts_per_user=1000, login_attempts_per_address=1000)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    calls: dict[str, int] = {"known": 0, "unknown": 0}
    with site(world, settings, ManualClock(NOW)) as url, httpx.Client(timeout=30) as client:
        for i in range(12):
            for kind, name in (("known", "maria"), ("unknown", f"nobody-{i}")):
                data = {"username": name, "password": "wrong", "csrf": csrf_token(client, url)}
                before = len(scrypt_calls)
                started = time.perf_counter()
                answer = client.post(f"{url}/reports/login", data=data)
                times[kind].append(time.perf_counter() - started)
                calls[kind] += len(scrypt_calls) - before
                assert answer.status_code == 401
    known, unknown = statistics.median(times["known"]), statistics.median(times["unknown"])
    print(f"login medians: known user {known * 1000:.1f} ms, unknown user {unknown * 1000:.1f} ms")

    assert calls == {"known": 12, "unknown": 12}
    assert unknown >= 0.6 * known, (known, unknown)


def test_healthz_stays_fast_while_eight_logins_hash_at_once_in_engagement_serve(
    tmp_path: Path, hashed: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[reports]\nusers = {{ maria = "{hashed}" }}\n'
        "login_attempts_per_user = 1000\nlogin_attempts_per_address = 1000\n"
    )
    migrate.upgrade(Database(config.load(path).database_url))
    with ApiProcess(path) as api:
        url = api.url
        quiet = _healthz_times(url, 20)
        with ThreadPoolExecutor(8) as pool:
            logging_in = [
                pool.submit(lambda: [attempt(url, "maria", "wrong") for _ in range(3)]) for _ in range(8)
            ]
            busy = _healthz_times(url, 0, until=lambda: all(f.done() for f in logging_in))
            codes = [a.status_code for f in logging_in for a in f.result()]
    print(
        f"/healthz: quiet median {statistics.median(quiet) * 1000:.1f} ms; during 8 parallel logins "
        f"median {statistics.median(busy) * 1000:.1f} ms, worst {max(busy) * 1000:.1f} ms over {len(busy)} calls"
    )

    assert codes == [401] * 24
    assert len(busy) >= 5
    assert statistics.median(busy) < 0.1, busy  # with scrypt on the event loop: 0.35-1.0 s


def _healthz_times(url: str, count: int, until: Callable[[], bool] | None = None) -> list[float]:
    found: list[float] = []
    with httpx.Client(timeout=30) as client:
        while len(found) < count or (until is not None and not until()):
            started = time.perf_counter()
            assert client.get(f"{url}/healthz").status_code == 200
            found.append(time.perf_counter() - started)
            time.sleep(0.02)
    return found


@pytest.mark.parametrize(("trusted", "codes"), [("[]", [401] * 3 + [429]), ('["127.0.0.1"]', [401] * 4)])
def test_server_forwarded_allow_ips_decides_whose_x_forwarded_for_names_the_client(
    tmp_path: Path, hashed: str, trusted: str, codes: list[int]
) -> None:
    # four names from four forwarded addresses, three attempts allowed per address: only a trusted
    # proxy's header spreads them over four addresses; untrusted, all four come from 127.0.0.1
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "e.db"}"\n[server]\nforwarded_allow_ips = {trusted}\n'
        f'[reports]\nusers = {{ maria = "{hashed}" }}\nlogin_attempts_per_address = 3\n'
    )
    migrate.upgrade(Database(config.load(path).database_url))
    with ApiProcess(path) as api:
        got = [
            attempt(api.url, f"user-{i}", "guess", address=f"198.51.100.{i}").status_code for i in range(4)
        ]

    assert got == codes
