"""The dashboard's survey figures, read by a real headless Chromium after logging in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_world import World
from survey_world import NOW, seed

from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.testing.served import served

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SERVER_KEY = "sk-test-survey-dashboard"


@pytest.fixture
def site(world: World) -> Iterator[str]:
    world.configure(
        f'[api]\nserver_keys = ["{SERVER_KEY}"]\n[reports]\nsession_secret = "test-session-secret"\n'
    )
    seed(world.db)
    with served(create_app(world.settings, database=world.db, clock=ManualClock(NOW))) as url:
        yield url


def test_chromium_shows_each_survey_steps_figures_by_touch_tier(site: str, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{site}/reports")
    page.fill("input[name=password]", SERVER_KEY)  # a server key, with the name left empty
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/reports")
    page.goto(f"{site}/reports?from=2026-03-01&to=2026-03-07")

    section = page.locator("section#journey-nps")
    heading = section.locator("h3", has_text="Surveys by touch tier")
    table = section.locator("table").last
    header = [c.strip() for c in table.locator("thead th").all_inner_texts()]
    rows = {
        cells[1]: dict(zip(header, cells, strict=True))
        for cells in (
            [c.strip() for c in row.locator("td").all_inner_texts()]
            for row in table.locator("tbody tr").all()
        )
    }
    ARTIFACTS.mkdir(exist_ok=True)
    heading.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "survey-dashboard.png"), full_page=True)

    assert heading.count() == 1
    assert "csat_mean" not in header  # an NPS step's table has NPS figures only
    assert (rows["tech"]["nps"], rows["tech"]["response_rate"], rows["tech"]["detractors"]) == (
        "-20.0",
        "87.5%",
        "2",
    )
    assert (rows["(all tiers)"]["nps_ci95_low"], rows["(all tiers)"]["nps_ci95_high"]) == ("-48.8", "+48.8")
    assert rows["high"]["nps"] == "n/a"
    context.close()
