"""The CS views in a real headless Chromium: log in, search a contact by email, open the contact, its
account and a journey, and check the numbers shown against the database; a `<script>` name is text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_world import NOW, World
from sqlalchemy import func, select

from engagement import vocab
from engagement.api import logins
from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.health import cards as scorecards
from engagement.health import compute
from engagement.ingest import revenue
from engagement.scores import score_view
from engagement.store import schema
from engagement.testing.served import served
from engagement.views import people

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
BACKENDS = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"
HOSTILE = "<script>alert('x')</script>"
JOURNEY = """\
id: onboarding
name: "Onboarding <first>"
status: active
trigger: {event: signed_up}
filter: {account.touch: tech}
goal: {milestone: first_report}
steps:
  - id: welcome
    email: {template: onboarding/welcome, subject: "Welcome aboard, {{ contact.first_name }}"}
  - id: pause
    wait: 2d
  - id: nudge
    in_app: {title: Connect, body: Connect your data.}
"""


@pytest.fixture(scope="module")
def hashed() -> str:
    return logins.hash_password(PASSWORD)


def _seed(world: World) -> None:
    """Acme (tech touch, revenue over three months) with five contacts, one named <script>; a low-touch account."""
    world.journey(JOURNEY)
    world.accounts({"id": "acme", "name": "Acme Corp", "plan": "pro", "mrr": 300, "touch": "tech"})
    world.accounts({"id": "lowco", "name": "Low Co", "plan": "free", "mrr": 0, "touch": "low"})
    people = [
        {
            "id": "c1",
            "account_id": "acme",
            "email": "ann@acme.example",
            "first_name": "Ann",
            "last_name": "Lee",
        },
        {"id": "c2", "account_id": "acme", "email": "bob@acme.example", "first_name": HOSTILE},
        *({"id": f"c{n}", "account_id": "acme", "email": f"p{n}@acme.example"} for n in (3, 4, 5)),
        {"id": "l1", "account_id": "lowco", "email": "lou@low.example", "first_name": "Lou"},
    ]
    world.contacts(*people)
    world.events(
        *({"contact_id": p["id"], "name": "signed_up", "timestamp": NOW - timedelta(hours=1)} for p in people)
    )
    with world.db.begin() as conn:
        revenue.write(
            world.db,
            conn,
            [
                {
                    "account_id": "acme",
                    "effective_at": NOW - timedelta(days=d),
                    "mrr": m,
                    "plan": "pro",
                    "renewal_date": None,
                    "source": "import",
                }
                for d, m in ((70, 100.0), (40, 200.0), (10, 300.0))
            ],
            NOW,
        )
        conn.execute(
            schema.milestones.insert(),
            [{"contact_id": "c5", "account_id": "acme", "name": "first_report", "reached_at": NOW}],
        )
    world.tick(NOW)
    with world.db.begin() as conn:
        delivery = conn.execute(
            select(schema.deliveries.c.id).where(schema.deliveries.c.contact_id == "c1")
        ).scalar_one()
        conn.execute(
            schema.survey_answers.insert(),
            [
                {
                    "delivery_id": delivery,
                    "contact_id": "c1",
                    "account_id": "acme",
                    "journey_id": "onboarding",
                    "step_id": "welcome",
                    "kind": "nps",
                    "score": 9,
                    "comment": "<b>great</b>",
                    "answered_at": NOW,
                }
            ],
        )
    world.tick(NOW + timedelta(minutes=5))  # c5's goal (first_report) converts it


SCORECARD = """\
id: tech
name: Tech <health>
applies_to: {account.touch: tech}
bands: {green: 70, yellow: 40}
measures:
  - {id: adoption, weight: 50, metric: {active_days: {within: 30d}}, points: [[0, 0], [2, 100]]}
  - {id: support, weight: 20, metric: {event_count: {event: ticket_opened, within: 30d}}, points: [[0, 100], [3, 0]]}
  - {id: nps, weight: 30, metric: {nps: {within: 180d}}, points: [[-100, 0], [100, 100]]}
"""


@pytest.fixture
def site(world: World, hashed: str) -> Iterator[str]:
    world.configure(f'[reports]\nusers = {{ maria = "{hashed}" }}\nsession_secret = "test-session-secret"\n')
    cards_dir = world.config_path.parent / "scorecards"
    cards_dir.mkdir()
    (cards_dir / "tech.yaml").write_text(SCORECARD)
    world.configure(f'[health]\ndir = "{cards_dir}"\n')
    _seed(world)
    compute.refresh(world.db, world.settings, scorecards.load(world.settings), NOW + timedelta(minutes=6))
    with served(
        create_app(world.settings, database=world.db, clock=ManualClock(NOW + timedelta(minutes=10)))
    ) as url:
        yield url


def _count(world: World, table: Any, *where: Any) -> int:
    with world.db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_the_pages_send_strangers_to_the_login_form(site: str) -> None:
    with httpx.Client(follow_redirects=False) as client:
        for path in ("/journeys", "/journeys/onboarding", "/contacts/c1", "/accounts/acme", "/search?q=ann"):
            answer = client.get(f"{site}{path}")
            assert answer.status_code == 303 and answer.headers["location"] == "/reports/login", path


def test_chromium_searches_a_contact_and_sees_the_databases_numbers(
    site: str, world: World, browser: Any
) -> None:
    en, d = schema.enrollments, schema.deliveries
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = _console_errors(page)
    page.goto(f"{site}/journeys")
    page.fill("input[name=username]", "maria")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/reports")
    page.goto(f"{site}/journeys")
    row = page.locator("tr[data-journey=onboarding]")
    assert int(row.locator("td.entered").inner_text()) == _count(world, en, en.c.journey_id == "onboarding")
    assert int(row.locator("td.active").inner_text()) == _count(world, en, en.c.state == "active")
    assert int(row.locator("td.converted").inner_text()) == _count(world, en, en.c.outcome == "converted")
    _shot(page, "views-journeys.png")

    page.fill("input[name=q]", "ann@ACME")
    page.click("header button[type=submit]")
    page.wait_for_url("**/search?q=*")
    page.click("table.hits a[href='/contacts/c1']")
    page.wait_for_url("**/contacts/c1")
    assert page.locator("td.email").inner_text() == "ann@acme.example"
    assert page.locator("table.enrollments tbody tr").count() == _count(world, en, en.c.subject_id == "c1")
    assert page.locator("table.messages tbody tr").count() == _count(world, d, d.c.contact_id == "c1")
    assert page.locator("table.answers tbody tr").count() == 1
    assert page.locator("table.answers").inner_text().count("<b>great</b>") == 1  # shown as text
    sentence = page.locator("#explain-onboarding .sentence").inner_text()
    assert sentence.startswith("enrolled at step pause")
    _shot(page, "views-contact.png")

    page.click("table.facts a[href='/accounts/acme']")
    page.wait_for_url("**/accounts/acme")
    assert page.locator("table.contacts tbody tr").count() == _count(
        world, schema.contacts, schema.contacts.c.account_id == "acme"
    )
    assert page.locator("#mrr svg.chart").count() == 1
    with world.db.begin() as conn:
        score = score_view.current(conn, world.settings, "account", "acme", NOW + timedelta(minutes=10))
        months = people.mrr_history(conn, "acme", NOW)
    assert page.locator("#health strong.score").inner_text() == f"{score:.1f}"
    hs, hm = schema.health_scores.c, schema.health_measures.c
    with world.db.begin() as conn:
        stored = conn.execute(select(hs.score, hs.band).where(hs.account_id == "acme")).one()
        measured = dict(conn.execute(select(hm.measure_id, hm.points).where(hm.account_id == "acme")).all())
    assert page.locator("#scorecard strong.scorecard").inner_text() == "Tech <health>"  # text, escaped
    assert page.locator("#scorecard strong.health-score").inner_text() == f"{stored.score:.1f}"
    assert page.locator("#scorecard strong.health-band").inner_text() == stored.band
    assert measured["nps"] == 100.0  # c1's 9: one promoter, NPS +100
    for measure, points in measured.items():
        shown = page.locator(f"tr[data-measure={measure}] td.points").inner_text()
        assert shown == ("skipped" if points is None else f"{points:.1f}")
    assert [m for _, m in months] == [100.0, 200.0, 300.0]  # the chart's points: one a month
    assert page.locator("#mrr svg.chart").get_attribute("data-points") == str(len(months))
    assert page.locator("table.messages tbody tr").count() == _count(world, d, d.c.contact_id.like("c%"))
    hostile = page.locator("table.contacts tbody tr", has_text="c2").inner_text()
    assert HOSTILE in hostile  # the <script> name is text, not a script
    assert page.locator("script").count() == 0
    _shot(page, "views-account.png")

    page.goto(f"{site}/journeys/onboarding?step=pause")
    at_pause = _count(world, en, en.c.step_id == "pause", en.c.state == vocab.EnrollmentState.ACTIVE)
    assert page.locator("text.step-active[data-step=pause]").text_content() == f"{at_pause} here now"
    assert page.locator("table.people tbody tr").count() == at_pause
    assert page.locator("table.people").inner_text().count(HOSTILE) == 1
    assert re.search(r"Onboarding <first>", page.locator("h2").first.inner_text())
    _shot(page, "views-journey.png")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = phone.new_page()
    small.context.add_cookies(context.cookies())
    small.goto(f"{site}/contacts/c2")
    assert small.locator("h2.who").inner_text() == HOSTILE
    width = small.evaluate("() => document.querySelector('main').scrollWidth")
    assert width <= 420, width  # readable on a phone: tables scroll inside their sections
    _shot(small, "views-contact-phone.png")
    phone.close()
    assert errors == []
    context.close()


def test_unknown_ids_and_steps_are_404s_naming_the_field(site: str) -> None:
    with httpx.Client(follow_redirects=True) as client:
        form = client.get(f"{site}/reports/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form)
        assert token is not None
        client.post(
            f"{site}/reports/login", data={"csrf": token[1], "username": "maria", "password": PASSWORD}
        )
        for path, field in (
            ("/contacts/nobody", "contact_id"),
            ("/accounts/nobody", "account_id"),
            ("/journeys/nothing", "journey_id"),
            ("/journeys/onboarding?step=nowhere", "step"),
        ):
            answer = client.get(f"{site}{path}")
            assert answer.status_code == 404 and field in answer.text, path
        assert client.get(f"{site}/journeys/onboarding?page=0").status_code == 422
