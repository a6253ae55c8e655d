"""The in-app inbox API: who may read which nudges, what an event records, CORS for configured origins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from engine_world import NOW, World

from engagement.api.app import create_app
from engagement.api.auth import contact_token
from engagement.clock import ManualClock
from engagement.scores import score_view
from engagement.store import schema
from engagement.testing.served import listening, serving

n, r = schema.nudges, schema.responses
SERVER_KEY = "server-key-for-tests"
ORIGIN = "https://app.chartwell.example"
LATER = NOW + timedelta(hours=1)


def nudge_journey(world: World, journey_id: str = "nudges", expires: str = "7d") -> None:
    world.journey(
        f"""
        id: {journey_id}
        name: Nudges
        status: active
        trigger: {{event: signed_up}}
        steps:
          - id: connect
            in_app:
              title: "Connect <b>your</b> data, {{{{ contact.first_name }}}}"
              body: Reports need a data source.
              cta: {{label: Connect, url: /settings/integrations}}
              expires: {expires}
        """
    )


@pytest.fixture
def inbox_world(world: World) -> World:
    world.configure(f'[api]\nserver_keys = ["{SERVER_KEY}"]\n[inapp]\ncors_origins = ["{ORIGIN}"]\n')
    nudge_journey(world)
    world.people(2)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "c001")))
    world.tick(NOW)
    assert world.count(n) == 2
    return world


@pytest.fixture
def api(inbox_world: World) -> Iterator[str]:
    sock, url = listening()
    app = create_app(inbox_world.settings, database=inbox_world.db, clock=ManualClock(LATER))
    with serving(app, sock):
        yield url


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def token(world: World, contact_id: str) -> dict[str, str]:
    return bearer(contact_token(contact_id, world.settings.inapp.token_secret))


def score(world: World, contact_id: str) -> float:
    with world.db.begin() as conn:
        return score_view.current(conn, world.settings, "contact", contact_id, LATER)


def nudge_of(world: World, contact_id: str) -> str:
    return str(world.rows(n, n.c.contact_id == contact_id)[0]["id"])


def test_a_contact_token_reads_that_contacts_nudges_and_no_one_elses(inbox_world: World, api: str) -> None:
    url = f"{api}/v1/contacts/c000/nudges"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=token(inbox_world, "c001")).status_code == 401
    assert httpx.get(url, headers=bearer("not-a-key")).status_code == 401
    mine = httpx.get(url, headers=token(inbox_world, "c000"))
    assert mine.status_code == 200
    [nudge] = mine.json()["nudges"]
    assert nudge["title"] == "Connect <b>your</b> data, C000"  # plain text, rendered for this contact
    assert nudge["cta"] == {"label": "Connect", "url": "/settings/integrations"}
    assert nudge["seen_at"] is None
    assert httpx.get(url, headers=bearer(SERVER_KEY)).json() == mine.json()


def test_events_are_recorded_once_a_click_implies_seen_and_the_score_rises(
    inbox_world: World, api: str
) -> None:
    nudge = nudge_of(inbox_world, "c000")
    url = f"{api}/v1/nudges/{nudge}/events"
    headers = token(inbox_world, "c000")
    before = score(inbox_world, "c000")  # signing up was an active day
    assert httpx.post(url, json={"kind": "clicked"}, headers=token(inbox_world, "c001")).status_code == 401
    assert httpx.post(url, json={"kind": "opened"}, headers=headers).status_code == 422
    first = httpx.post(url, json={"kind": "clicked"}, headers=headers)
    assert first.status_code == 200 and first.json()["recorded"] == ["seen", "clicked"]
    again = httpx.post(url, json={"kind": "clicked"}, headers=headers)
    assert again.json()["recorded"] == []
    kinds = sorted(row["kind"] for row in inbox_world.rows(r, r.c.contact_id == "c000"))
    assert kinds == ["clicked", "seen"]
    [row] = inbox_world.rows(n, n.c.id == nudge)
    assert row["seen_at"] == LATER and row["clicked_at"] == LATER
    weights = inbox_world.settings.scoring.weights
    assert score(inbox_world, "c000") - before == pytest.approx(
        weights["nudge_seen"] + weights["nudge_clicked"]
    )
    # an unknown id is 404 for a server key; a contact token cannot vouch for a nudge no one owns (below)
    assert (
        httpx.post(
            f"{api}/v1/nudges/nope/events", json={"kind": "seen"}, headers=bearer(SERVER_KEY)
        ).status_code
        == 404
    )


def test_the_events_route_authenticates_before_it_tells_whether_a_nudge_exists(
    inbox_world: World, api: str
) -> None:
    known = f"{api}/v1/nudges/{nudge_of(inbox_world, 'c000')}/events"
    unknown = f"{api}/v1/nudges/nope/events"
    for credentials in ({}, bearer("not-a-key"), token(inbox_world, "c001")):
        answers = [httpx.post(url, json={"kind": "seen"}, headers=credentials) for url in (known, unknown)]
        assert [a.status_code for a in answers] == [401, 401]
        assert answers[0].json() == answers[1].json()
    assert httpx.post(unknown, json={"kind": "seen"}, headers=bearer(SERVER_KEY)).status_code == 404
    assert inbox_world.count(r, r.c.kind == "seen") == 0


def test_a_nudges_call_to_action_label_and_url_are_rendered_for_each_contact(world: World) -> None:
    world.journey("""
        id: personal
        name: Personal
        status: active
        trigger: {event: signed_up}
        steps:
          - id: invite
            in_app:
              title: Invite your team
              cta: {label: "Invite, {{ contact.first_name }}", url: "/team/{{ contact.id }}/invite"}
    """)
    world.people(2)
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "c001")))
    world.tick(NOW)
    sock, url = listening()
    app = create_app(world.settings, database=world.db, clock=ManualClock(LATER))
    with serving(app, sock):
        got = {
            c: httpx.get(f"{url}/v1/contacts/{c}/nudges", headers=token(world, c)).json()["nudges"][0]["cta"]
            for c in ("c000", "c001")
        }
    assert got == {
        "c000": {"label": "Invite, C000", "url": "/team/c000/invite"},
        "c001": {"label": "Invite, C001", "url": "/team/c001/invite"},
    }


def test_a_call_to_action_whose_url_renders_to_a_script_link_is_not_put_in_the_inbox(world: World) -> None:
    world.journey("""
        id: linked
        name: Linked
        status: active
        trigger: {event: signed_up}
        steps:
          - id: open
            in_app:
              title: Open your page
              cta: {label: Open, url: "{{ contact.traits.page | default('/home') }}"}
    """)
    world.people(1, traits={"page": "javascript:alert(document.cookie)"})
    world.people(1, prefix="ok", traits={"page": "https://app.example/p/1"})
    world.events(*({"contact_id": c, "name": "signed_up", "timestamp": NOW} for c in ("c000", "ok000")))

    world.tick(NOW)

    [kept] = world.rows(n)
    assert (kept["contact_id"], kept["cta_url"]) == ("ok000", "https://app.example/p/1")
    d = schema.deliveries
    [refused] = world.rows(d, d.c.contact_id == "c000")
    assert refused["status"] == "failed"
    assert "cta.url renders to 'javascript:alert(document.cookie)'" in refused["status_reason"]


def test_the_inbox_lists_unseen_first_and_hides_clicked_dismissed_and_expired_nudges(
    inbox_world: World, api: str
) -> None:
    nudge_journey(inbox_world, "second", expires="3h")
    nudge_journey(inbox_world, "third")
    inbox_world.events({"contact_id": "c000", "name": "signed_up", "timestamp": NOW + timedelta(minutes=5)})
    inbox_world.tick(NOW + timedelta(minutes=10))
    ids = {row["journey_id"]: row["id"] for row in inbox_world.rows(n, n.c.contact_id == "c000")}
    assert set(ids) == {"nudges", "second", "third"}
    headers = token(inbox_world, "c000")
    httpx.post(f"{api}/v1/nudges/{ids['nudges']}/events", json={"kind": "seen"}, headers=headers)

    def listed() -> list[str]:
        got = httpx.get(f"{api}/v1/contacts/c000/nudges", headers=headers).json()["nudges"]
        return [nudge["journey_id"] for nudge in got]

    assert listed()[-1] == "nudges" and set(listed()) == {"nudges", "second", "third"}
    httpx.post(f"{api}/v1/nudges/{ids['third']}/events", json={"kind": "dismissed"}, headers=headers)
    assert listed() == ["second", "nudges"]
    httpx.post(f"{api}/v1/nudges/{ids['nudges']}/events", json={"kind": "clicked"}, headers=headers)
    assert listed() == ["second"]


def test_the_expiry_hides_a_nudge(inbox_world: World) -> None:
    sock, url = listening()
    app = create_app(
        inbox_world.settings, database=inbox_world.db, clock=ManualClock(NOW + timedelta(days=8))
    )
    with serving(app, sock):
        got = httpx.get(f"{url}/v1/contacts/c000/nudges", headers=token(inbox_world, "c000"))
    assert got.json() == {"nudges": []}


def test_cors_lets_configured_origins_call_with_a_token_and_no_others(api: str) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{api}/v1/contacts/c000/nudges",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = preflight("https://evil.example")
    assert "access-control-allow-origin" not in refused.headers


def test_the_script_is_served_as_javascript_and_never_writes_html(api: str) -> None:
    got = httpx.get(f"{api}/static/nudges.js")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in got.text and "textContent" in got.text
