"""The JSON views of a contact's and an account's survey answers, over a real HTTP server."""

from __future__ import annotations

import httpx
import pytest
from engine_world import World
from survey_world import NOW, seed

from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.testing.served import listening, serving

SERVER_KEY = "server-key-for-survey-views"


@pytest.fixture
def seeded(world: World) -> World:
    world.configure(f'[api]\nserver_keys = ["{SERVER_KEY}"]\n')
    seed(world.db)
    return world


def test_a_contacts_and_an_accounts_answers_come_oldest_first_with_a_server_key(seeded: World) -> None:
    sock, url = listening()
    app = create_app(seeded.settings, database=seeded.db, clock=ManualClock(NOW))
    key = {"Authorization": f"Bearer {SERVER_KEY}"}
    with serving(app, sock):
        assert httpx.get(f"{url}/v1/contacts/t1/survey-answers").status_code == 401
        t1 = httpx.get(f"{url}/v1/contacts/t1/survey-answers", headers=key).json()["answers"]
        low = httpx.get(f"{url}/v1/accounts/low-co/survey-answers", headers=key).json()["answers"]
        nobody = httpx.get(f"{url}/v1/accounts/nobody/survey-answers", headers=key).json()
    assert [(a["step"], a["score"], a["comment"]) for a in t1] == [
        ("nps-day-90", 9, ""),
        ("csat-ticket", 3, ""),
        ("nps-day-90", 3, "Too slow, sadly"),
    ]
    assert t1[2]["answered_at"] == "2026-03-04T10:00:00+00:00"
    assert {a["contact"] for a in low} == {"l1", "l2", "l4"} and len(low) == 6
    assert nobody == {"answers": []}
