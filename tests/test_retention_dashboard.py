"""`GET /reports/retention` behind the dashboard login, `GET /v1/reports/retention` behind a key, the page in
a real headless Chromium, and hostile query parameters at both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from engine_world import World
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from revenue_world import NOW, seed
from test_hostile_fuzz import HOSTILE
from test_report_dashboard import (
    ARTIFACTS,
    PASSWORD,
    SERVER_KEY,
    _console_errors,
    _login,
    browser_login,
    hashed,
)

from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.testing.served import served

__all__ = ["hashed"]  # the login's password hash fixture, shared with the journey dashboard's tests
RANGE = {"from": "2026-01", "to": "2026-04"}
BEARER = {"Authorization": f"Bearer {SERVER_KEY}"}
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def site(world: World, hashed: str) -> Iterator[str]:
    """The six accounts' world served by uvicorn on 127.0.0.1, with one user and one server key."""
    world.configure(
        f'[api]\nserver_keys = ["{SERVER_KEY}"]\n[reports]\nusers = {{ maria = "{hashed}" }}\n'
        'session_secret = "test-session-secret"\n'
    )
    seed(world.db)
    with served(create_app(world.settings, database=world.db, clock=ManualClock(NOW))) as url:
        yield url


def test_the_json_needs_a_key_and_holds_the_reports_numbers(site: str) -> None:
    anonymous = httpx.get(f"{site}/v1/reports/retention", params=RANGE)
    wrong = httpx.get(f"{site}/v1/reports/retention", params=RANGE, headers={"Authorization": "Bearer no"})
    doc = httpx.get(f"{site}/v1/reports/retention", params={**RANGE, "by": "plan"}, headers=BEARER).json()

    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert [m["end_mrr"] for m in doc["total"]["months"]] == [420, 410, 430, 460]
    assert [g["group"] for g in doc["groups"]] == ["business", "starter", "team"]
    assert doc["by"] == "plan"


def test_the_json_names_the_bad_parameter(site: str) -> None:
    def detail(**params: str) -> tuple[int, str]:
        answer = httpx.get(f"{site}/v1/reports/retention", params=params, headers=BEARER)
        return answer.status_code, answer.json()["detail"]

    assert detail(**{"from": "2026-3"}) == (
        400,
        "from: '2026-3' is not a month written YYYY-MM (e.g. 2026-03)",
    )
    assert detail(**{"from": "2026-05", "to": "2026-04"}) == (400, "to: 2026-04 is before from 2026-05")
    assert detail(by="region") == (400, "by: 'region' is not one of touch, plan, cohort")


def test_the_dashboard_page_sends_strangers_to_the_login_and_shows_a_user_the_report(site: str) -> None:
    stranger = httpx.get(f"{site}/reports/retention", params=RANGE)
    with httpx.Client(follow_redirects=True) as client:
        _login(client, site, "maria", PASSWORD)
        page = client.get(f"{site}/reports/retention", params={**RANGE, "by": "touch"})
        bad = client.get(f"{site}/reports/retention", params={"to": "2026-99"})

    assert stranger.status_code == 303 and stranger.headers["location"] == "/reports/login"
    assert page.status_code == 200 and 'id="retention-touch-high"' in page.text and "maria" in page.text
    assert bad.status_code == 400 and "to: &#x27;2026-99&#x27; is not a month" in bad.text


def test_chromium_logs_in_and_draws_the_bridge_and_the_rate_lines(site: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = _console_errors(page)
    browser_login(page, site, "/reports/retention")
    page.goto(f"{site}/reports/retention?from=2026-01&to=2026-04")
    page.select_option("select[name=by]", "plan")
    page.click("header button[type=submit]")
    page.wait_for_url("**/reports/retention?*by=plan*")
    for kind in ("bridge", "rates"):
        page.wait_for_selector(f'svg.chart[data-chart="{kind}"]', state="visible", timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "retention-dashboard.png"), full_page=True)

    bars = page.eval_on_selector_all(
        'svg.chart[data-chart="bridge"] rect.mark', "marks => marks.map(m => Number(m.dataset.value))"
    )
    lines = page.locator('svg.chart[data-chart="rates"] polyline.mark').count()
    sections = page.eval_on_selector_all("section.retention", "s => s.map(x => x.id)")
    cells = page.locator("#retention-all table.retention tbody tr").count()

    # start 390, new 80, reactivation 90, expansion 40, contraction -50, churn -90, end 460 over the range
    assert bars == [390, 80, 90, 40, -50, -90, 460]
    assert lines == 2
    assert sections == [
        "retention-all",
        "retention-plan-business",
        "retention-plan-starter",
        "retention-plan-team",
    ]
    assert cells == 4
    assert page.input_value("input[name=from]") == "2026-01"
    assert errors == []
    context.close()


def _query(**params: str) -> str:
    """A query string that sends each value's bytes as they are (a lone surrogate as bytes that are not UTF-8)."""
    return "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in params.items())


def test_hostile_query_parameters_get_a_clear_answer_at_the_json_and_the_page(site: str) -> None:
    hostile = HOSTILE.filter(lambda v: isinstance(v, str)).map(lambda v: v[:4000])  # a URL stays under 64 KiB
    text = st.one_of(hostile, st.text(max_size=12), st.just("2026-04"))
    with httpx.Client(follow_redirects=True, timeout=20) as client:
        _login(client, site, "maria", PASSWORD)

        @FUZZ
        @given(st.dictionaries(st.sampled_from(["from", "to", "by"]), text, max_size=3))
        def both(params: dict[str, str]) -> None:
            json_answer = client.get(f"{site}/v1/reports/retention?{_query(**params)}", headers=BEARER)
            page = client.get(f"{site}/reports/retention?{_query(**params)}")
            assert json_answer.status_code in (200, 400), json_answer.text
            assert page.status_code in (200, 400), page.text
            if json_answer.status_code == 400:
                assert json_answer.json()["detail"].split(":")[0] in ("from", "to", "by")

        both()
