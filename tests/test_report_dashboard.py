"""`GET /reports` behind its login, the `/v1/reports` JSON, and both pages in a real headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_world import World
from report_world import JOURNEY, NOW, seed

from engagement.api import logins
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.testing.served import served

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SERVER_KEY = "sk-test-reports"
PASSWORD = "correct horse battery staple"
RANGE = {"from": "2026-03-01", "to": "2026-03-07"}
CHARTS = ("funnel", "daily", "lift", "ttv", "bands")


@pytest.fixture(scope="module")
def hashed() -> str:
    return logins.hash_password(PASSWORD)


@pytest.fixture
def site(world: World, hashed: str) -> Iterator[str]:
    """The seeded world's API served by uvicorn on 127.0.0.1, with one user and one server key."""
    world.configure(
        f'[api]\nserver_keys = ["{SERVER_KEY}"]\n[reports]\nusers = {{ maria = "{hashed}" }}\n'
        'session_secret = "test-session-secret"\n'
    )
    world.journey(JOURNEY)
    seed(world.db)
    with served(create_app(world.settings, database=world.db, clock=ManualClock(NOW))) as url:
        yield url


def csrf_token(client: httpx.Client, site: str) -> str:
    """Open the login form as a browser would: its CSRF cookie lands in the client, its token is returned."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(f"{site}/reports/login").text)
    assert found is not None, "the login form has no CSRF token"
    return found.group(1)


def _login(client: httpx.Client, site: str, username: str, password: str) -> httpx.Response:
    data = {"username": username, "password": password, "csrf": csrf_token(client, site)}
    return client.post(f"{site}/reports/login", data=data)


def test_the_dashboard_sends_strangers_to_the_login_page(site: str) -> None:
    with httpx.Client() as client:
        first = client.get(f"{site}/reports", params=RANGE)
        wrong = _login(client, site, "maria", "guess")
        client.cookies.set(logins.COOKIE, "eyJ1IjoibWFyaWEifQ.00")
        forged = client.get(f"{site}/reports")

    assert first.status_code == 303 and first.headers["location"] == "/reports/login"
    assert wrong.status_code == 401 and "do not match" in wrong.text
    assert forged.status_code == 303


def test_a_configured_user_logs_in_and_sees_the_report(site: str) -> None:
    with httpx.Client(follow_redirects=True) as client:
        landed = _login(client, site, "maria", PASSWORD)
        page = client.get(f"{site}/reports", params=RANGE)
        asked = client.get(f"{site}/reports/logout")  # a link or an image elsewhere: ends nothing
        still = client.get(f"{site}/reports", params=RANGE, follow_redirects=False)
        out = client.post(f"{site}/reports/logout")
        after = client.get(f"{site}/reports", params=RANGE, follow_redirects=False)

    assert landed.status_code == 200 and "maria" in landed.text
    assert (
        page.status_code == 200
        and 'id="journey-onb"' in page.text
        and "14 entered (4 in holdout)" in page.text
    )
    assert 'method="post" action="/reports/logout"' in page.text
    assert asked.status_code == 200 and 'method="post" action="/reports/logout"' in asked.text
    assert still.status_code == 200
    assert out.url.path == "/reports/login"
    assert after.status_code == 303


def test_a_server_key_logs_in_without_a_name_and_reads_the_json(site: str) -> None:
    with httpx.Client(follow_redirects=True) as client:
        assert "server key" in _login(client, site, "", SERVER_KEY).text
        by_cookie = client.get(f"{site}/v1/reports", params=RANGE).json()
    bearer = {"Authorization": f"Bearer {SERVER_KEY}"}
    one = httpx.get(f"{site}/v1/reports/journeys/onb", params=RANGE, headers=bearer).json()
    scores = httpx.get(f"{site}/v1/reports/engagement", params=RANGE, headers=bearer).json()

    [onb] = [j for j in by_cookie["journeys"] if j["id"] == "onb"]
    assert onb["totals"]["entered"] == one["totals"]["entered"] == 14
    assert one["lift"]["treated"] == 10 and one["lift"]["holdout"] == 4
    assert [t["subject_id"] for t in scores["turned_red"]] == ["a1", "s1", "s3"]


def test_the_json_refuses_callers_without_a_key_and_names_unknown_journeys(site: str) -> None:
    bearer = {"Authorization": f"Bearer {SERVER_KEY}"}

    assert httpx.get(f"{site}/v1/reports").status_code == 401
    assert httpx.get(f"{site}/v1/reports", headers={"Authorization": "Bearer nope"}).status_code == 401
    missing = httpx.get(f"{site}/v1/reports/journeys/nope", headers=bearer)
    assert missing.status_code == 404 and "onb" in missing.json()["detail"]
    assert httpx.get(f"{site}/v1/reports", params={"since": "soon"}, headers=bearer).status_code == 400


def _charts_in(page: Any, name: str) -> dict[str, int]:
    """Wait for every chart, screenshot the page into test-artifacts/, return data points per chart kind."""
    for kind in CHARTS:
        page.wait_for_selector(f'svg.chart[data-chart="{kind}"]', state="visible", timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    found: dict[str, int] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('svg.chart')].map(
            s => [s.dataset.chart, s.querySelectorAll('.mark').length]))"""
    )
    return found


def _console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def browser_login(page: Any, site: str, start: str) -> None:
    """Open `start` in the browser, land on the login form, log in as maria and wait for the dashboard."""
    page.goto(f"{site}{start}")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/reports")


def test_chromium_logs_in_and_renders_every_dashboard_chart(site: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = _console_errors(page)
    browser_login(page, site, "/reports")
    page.fill("input[name=from]", RANGE["from"])
    page.fill("input[name=to]", RANGE["to"])
    page.select_option("select[name=journey]", "onb")
    page.click("header button[type=submit]")
    page.wait_for_url("**/reports?journey=onb*")

    found = _charts_in(page, "reports-dashboard.png")

    assert all(found.get(kind, 0) > 0 for kind in CHARTS), found
    assert page.locator("svg.chart[data-chart=lift] line.mark").get_attribute("data-low") is not None
    assert page.locator("section.journey").count() == 1  # the drill-down shows the chosen journey only
    assert errors == []
    context.close()


def test_chromium_opens_the_report_file_offline_with_its_charts(
    world: World, browser: Any, tmp_path: Path
) -> None:
    world.journey(JOURNEY)
    seed(world.db)
    out = tmp_path / "report.html"
    result = world.cli(
        "report", "--from", "2026-03-01", "--to", "2026-03-07", "--format", "html", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    context = browser.new_context(offline=True)
    page = context.new_page()
    errors = _console_errors(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())

    found = _charts_in(page, "reports-file.png")

    assert all(found.get(kind, 0) > 0 for kind in CHARTS), found
    assert requests == [out.as_uri()]  # nothing but the file itself
    assert errors == []
    context.close()
