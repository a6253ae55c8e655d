"""A real browser shows a contact's nudge through /static/nudges.js; its call-to-action records a click."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from engine_world import NOW, World
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from test_inbox import nudge_journey

from engagement.api.app import create_app
from engagement.api.auth import contact_token
from engagement.clock import ManualClock
from engagement.scores import score_view
from engagement.store import schema
from engagement.testing.served import listening, serving

n, r = schema.nudges, schema.responses
LATER = NOW + timedelta(hours=1)


def host_product(script_tag: str) -> FastAPI:
    """The customer's own web app on another origin: a dashboard that includes the script, and the CTA's page."""
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return f"<!doctype html><html><head><title>Dashboard</title>{script_tag}</head><body><h1>Reports</h1></body></html>"

    @app.get("/settings/integrations", response_class=HTMLResponse)
    def integrations() -> str:
        return "<!doctype html><html><body><h1>Integrations</h1></body></html>"

    return app


def signed_up(world: World) -> Any:
    """One contact signs up and the tick puts the journey's nudge in their inbox; that nudge."""
    world.people(1)
    world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW})
    world.tick(NOW)
    [nudge] = world.rows(n)
    return nudge


def score_of(world: World) -> float:
    with world.db.begin() as conn:
        return score_view.current(conn, world.settings, "contact", "c000", LATER)


def eventually(check: Callable[[], Any], seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_a_page_with_nudges_js_shows_the_nudge_and_its_cta_records_a_click_and_raises_the_score(
    world: World, browser: Any
) -> None:
    host_sock, host_url = listening()
    api_sock, api_url = listening()
    world.configure(f'[inapp]\ncors_origins = ["{host_url}"]\n')
    nudge_journey(world)
    nudge = signed_up(world)

    def score() -> float:
        return score_of(world)

    def kinds() -> list[str]:
        return sorted(row["kind"] for row in world.rows(r, r.c.delivery_id == nudge["delivery_id"]))

    before = score()
    token = contact_token("c000", world.settings.inapp.token_secret)
    tag = f'<script src="{api_url}/static/nudges.js" data-contact="c000" data-token="{token}" defer></script>'
    api = create_app(world.settings, database=world.db, clock=ManualClock(LATER))
    with serving(api, api_sock), serving(host_product(tag), host_sock):
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text) if "nudges.js" in msg.text else None)
        page.on(
            "response",
            lambda got: (
                problems.append(f"{got.status} {got.url}")
                if got.url.startswith(api_url) and got.status >= 400
                else None
            ),
        )
        try:
            page.goto(host_url + "/")
            card = page.locator(f'.engagement-nudge[data-nudge-id="{nudge["id"]}"]')
            card.wait_for(state="visible", timeout=10_000)
            # the title is text: the <b> in it is shown, not interpreted
            assert card.locator(".engagement-nudge-title").inner_text() == "Connect <b>your</b> data, C000"
            assert card.locator("b").count() == 0
            assert card.locator(".engagement-nudge-body").inner_text() == "Reports need a data source."
            assert eventually(lambda: kinds() == ["seen"]), kinds()
            # the request credits the score right after it commits the response: wait for that too
            expected = before + world.settings.scoring.weights["nudge_seen"]
            assert eventually(lambda: score() == pytest.approx(expected)), score()
            seen = score()
            card.locator("a.engagement-nudge-cta", has_text="Connect").click()
            page.wait_for_url(host_url + "/settings/integrations", timeout=10_000)
        finally:
            page.close()
    assert problems == []
    assert kinds() == ["clicked", "seen"]
    [after] = world.rows(n)
    assert after["clicked_at"] == LATER
    weights = world.settings.scoring.weights
    assert seen == pytest.approx(before + weights["nudge_seen"])
    assert score() == pytest.approx(seen + weights["nudge_clicked"])
    assert score() > seen > before


def test_a_contact_answers_the_in_app_survey_with_the_keyboard_and_the_answer_is_stored_and_credited(
    world: World, browser: Any
) -> None:
    host_sock, host_url = listening()
    api_sock, api_url = listening()
    world.configure(f'[inapp]\ncors_origins = ["{host_url}"]\n')
    world.journey(
        """
        id: csat-inapp
        name: CSAT in-app
        status: active
        trigger: {event: signed_up}
        steps:
          - id: ask
            survey:
              kind: csat
              channel: in_app
              question: "How satisfied are you with <b>reports</b>, {{ contact.first_name }}?"
              comment: "What could be better?"
        """
    )
    nudge = signed_up(world)

    def score() -> float:
        return score_of(world)

    def answers() -> list[Any]:
        return world.rows(schema.survey_answers)

    before = score()
    token = contact_token("c000", world.settings.inapp.token_secret)
    tag = f'<script src="{api_url}/static/nudges.js" data-contact="c000" data-token="{token}" defer></script>'
    api = create_app(world.settings, database=world.db, clock=ManualClock(LATER))
    with serving(api, api_sock), serving(host_product(tag), host_sock):
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text) if "nudges.js" in msg.text else None)
        try:
            page.goto(host_url + "/")
            card = page.locator(f'.engagement-nudge[data-nudge-id="{nudge["id"]}"]')
            card.wait_for(state="visible", timeout=10_000)
            assert card.locator(".engagement-nudge-title").inner_text() == (
                "How satisfied are you with <b>reports</b>, C000?"
            )
            assert card.locator("b").count() == 0
            scores = card.locator("button.engagement-survey-score")
            assert scores.all_inner_texts() == ["1", "2", "3", "4", "5"]
            scores.first.focus()  # then only the keyboard: Tab to 4, Enter picks it
            for _ in range(3):
                page.keyboard.press("Tab")
            page.keyboard.press("Enter")
            assert card.locator('button[aria-pressed="true"]').inner_text() == "4"
            box = card.locator("textarea")
            box.wait_for(state="visible", timeout=5_000)
            page.keyboard.press("Tab")  # past button 5 to the comment box
            page.keyboard.press("Tab")
            assert box.evaluate("node => node === document.activeElement")
            page.keyboard.type("Faster <script>exports</script>")
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")  # the Send button
            card.locator(".engagement-survey-thanks").wait_for(state="visible", timeout=10_000)
            assert eventually(lambda: len(answers()) == 1), answers()
        finally:
            page.close()
    assert problems == []
    [answer] = answers()
    assert (answer["kind"], answer["score"], answer["comment"]) == (
        "csat",
        4,
        "Faster <script>exports</script>",
    )
    expected = (
        before
        + world.settings.scoring.weights["survey_answered"]
        + world.settings.scoring.weights["nudge_seen"]
    )
    assert eventually(lambda: score() == pytest.approx(expected)), score()
