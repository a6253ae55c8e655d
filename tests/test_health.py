"""Health scorecards: hand-computed scores for a small world, and the SQL refresh agreeing with its Python twin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import url_for
from condition_world import (
    account,
    account_reached,
    account_score,
    contact,
    drop_database,
    event,
    open_database,
)
from health_world import NOW, SETTINGS, answer, clear, fresh_database, revenue, write_cards
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from engagement.health import cards as scorecards
from engagement.health import compute, twin
from engagement.store import schema
from engagement.store.database import Database

DAY = timedelta(days=1)
BIG = {  # every metric, for enterprise accounts
    "id": "big", "order": 10, "applies_to": {"account.plan": "enterprise"}, "bands": {"green": 70, "yellow": 40},
    "measures": [
        {"id": "adoption", "weight": 10, "metric": {"active_days": {"within": "30d"}}, "points": [[0, 0], [4, 100]]},
        {"id": "reach", "weight": 10, "metric": {"active_share": {"within": "30d"}}, "points": [[0, 0], [1, 100]]},
        {"id": "support", "weight": 10, "metric": {"event_count": {"event": "ticket_opened", "within": "30d"}},
         "points": [[0, 100], [4, 0]]},
        {"id": "miles", "weight": 5, "metric": {"milestones": {"names": ["integration_connected", "first_report_created"]}},
         "points": [[0, 0], [2, 100]]},
        {"id": "engaged", "weight": 5, "metric": "engagement", "points": [[0, 0], [20, 100]]},
        {"id": "nps", "weight": 10, "metric": {"nps": {"within": "180d"}}, "points": [[-100, 0], [100, 100]]},
        {"id": "csat", "weight": 10, "metric": {"csat": {"within": "180d"}}, "points": [[1, 0], [5, 100]], "missing": 50},
        {"id": "tenure", "weight": 5, "metric": {"days_since": {"field": "account.signed_up_at"}},
         "points": [[0, 0], [200, 100]]},
        {"id": "revenue", "weight": 10, "metric": {"mrr_change": {"within": "90d"}}, "points": [[-0.5, 0], [0, 100]]},
        {"id": "seats", "weight": 5, "metric": {"trait": {"path": "seats"}}, "points": [[0, 0], [20, 100]]},
    ],
}  # fmt: skip
TECH = {  # a second scorecard, chosen by applies_to for tech-touch accounts
    "id": "tech", "order": 20, "applies_to": {"account.touch": "tech"},
    "measures": [
        {"id": "adoption", "weight": 50, "metric": {"active_days": {"within": "30d"}}, "points": [[0, 0], [4, 100]]},
        {"id": "payments", "weight": 30, "metric": {"event_count": {"event": "payment_failed", "within": "60d"}},
         "points": [[0, 100], [1, 30], [2, 0]]},
        {"id": "nps", "weight": 20, "metric": {"nps": {"within": "180d"}}, "points": [[-100, 0], [100, 100]],
         "missing": 40},
    ],
}  # fmt: skip


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    with fresh_database(backend) as handle:
        yield handle


@pytest.fixture
def cards(tmp_path: Path) -> scorecards.Cards:
    return write_cards(tmp_path / "scorecards", BIG, TECH)


def small_world(db: Database) -> None:
    rows: dict[Any, list[dict[str, Any]]] = {
        schema.accounts: [
            account(
                "a1", plan="enterprise", touch="high", signed_up_at=NOW - 100.5 * DAY, traits={"seats": 12}
            ),
            account("a2", touch="tech"),  # no contacts
            account("a3", plan="pro", touch="low"),  # no scorecard applies
            account("a4", touch="tech"),
        ],
        schema.contacts: [contact("c1", "a1"), contact("c2", "a1"), contact("c4", "a4")],
        schema.events: [
            event("c1", "report_viewed", NOW - 1 * DAY, "a1"),
            event("c1", "report_viewed", NOW - 1 * DAY + timedelta(minutes=5), "a1"),  # the same day
            event("c1", "report_viewed", NOW - 2 * DAY, "a1"),
            event("c1", "report_shared", NOW - 20 * DAY, "a1"),
            event("c1", "report_viewed", NOW - 40 * DAY, "a1"),  # outside the 30 days
            event("c1", "payment_failed", NOW - 3 * DAY, "a1"),  # not usage
            event("c2", "ticket_opened", NOW - 4 * DAY, "a1"),  # not usage; the account's ticket
            event("c2", "ticket_opened", NOW - 5 * DAY, "a1"),
            {**event("c2", "journey_note", NOW - 1 * DAY, "a1"), "source": "engine"},  # the engine's own
            event("someone", "payment_failed", NOW - 10 * DAY, "a2"),
            event("c4", "payment_failed", NOW - 5 * DAY, "a4"),
            event("c4", "report_viewed", NOW - 40 * DAY, "a4"),
        ],
        schema.account_milestones: [account_reached("a1", "integration_connected", NOW - 50 * DAY)],
        schema.account_scores: [account_score("a1", 20.0, NOW)],
        schema.survey_answers: [
            answer("d1", "c1", "a1", "nps", 10, NOW - 10 * DAY),
            answer("d2", "c2", "a1", "nps", 9, NOW - 20 * DAY),
            answer("d3", "c2", "a1", "nps", 3, NOW - 5 * DAY),  # c2's latest
        ],
        schema.table(schema.Revenue): [
            revenue("a1", NOW - 120 * DAY, 100.0),
            revenue("a1", NOW - 10 * DAY, 80.0),
        ],
    }
    with db.begin() as conn:
        clear(conn)
        for table, table_rows in rows.items():
            conn.execute(insert(table), table_rows)


def stored(db: Database) -> dict[str, tuple[str | None, float | None, str]]:
    hs = schema.health_scores.c
    with db.begin() as conn:
        return {
            r.account_id: (r.scorecard_id, r.score, r.band)
            for r in conn.execute(select(hs.account_id, hs.scorecard_id, hs.score, hs.band))
        }


def measures(db: Database, account_id: str) -> dict[str, tuple[float | None, float | None]]:
    hm = schema.health_measures.c
    with db.begin() as conn:
        found = conn.execute(select(hm.measure_id, hm.value, hm.points).where(hm.account_id == account_id))
        return {m: (v, p) for m, v, p in found}


def test_hand_computed_scores_cover_every_metric_and_the_missing_rules(
    db: Database, cards: scorecards.Cards
) -> None:
    small_world(db)
    done = compute.refresh(db, SETTINGS, cards, NOW)
    assert done == compute.Refreshed(accounts=4, changed=4)
    expected_a1 = {
        "adoption": (1.5, 37.5),  # c1: 3 distinct days (two views on one day), c2: none; mean 1.5
        "reach": (0.5, 50.0),  # one of two contacts
        "support": (2.0, 50.0),
        "miles": (1.0, 50.0),
        "engaged": (10.0, 50.0),  # 20 for the account over 2 contacts
        "nps": (0.0, 50.0),  # c1 promoter, c2's latest a detractor
        "csat": (None, 50.0),  # no answer: missing 50
        "tenure": (100.0, 50.0),  # 100.5 days: whole days
        "revenue": (pytest.approx(-0.2), pytest.approx(60.0)),
        "seats": (12.0, 60.0),
    }
    assert measures(db, "a1") == expected_a1
    # (10*37.5 + 10*50 + 10*50 + 5*50 + 5*50 + 10*50 + 10*50 + 5*50 + 10*60 + 5*60) / 80 = 4025 / 80
    assert stored(db)["a1"] == ("big", 50.31, "yellow")
    # a2 has no contacts: adoption skipped; one failed payment 30 points, nps missing 40 points
    assert measures(db, "a2") == {"adoption": (None, None), "payments": (1.0, 30.0), "nps": (None, 40.0)}
    assert stored(db)["a2"] == ("tech", (30 * 30 + 20 * 40) / 50, "red")
    # a4's failed payment is not an active day: adoption 0, payments 30
    assert measures(db, "a4") == {"adoption": (0.0, 0.0), "payments": (1.0, 30.0), "nps": (None, 40.0)}
    assert stored(db)["a4"] == ("tech", (0 + 30 * 30 + 20 * 40) / 100, "red")
    assert stored(db)["a3"] == (None, None, "unknown")


def test_the_python_twin_gives_the_same_health_for_the_small_world(
    db: Database, cards: scorecards.Cards
) -> None:
    small_world(db)
    compute.refresh(db, SETTINGS, cards, NOW)
    for account_id, found in twins(db, cards).items():
        assert (found.scorecard, found.score, found.band) == stored(db)[account_id]


def twins(db: Database, cards: scorecards.Cards) -> dict[str, twin.Health]:
    """The Python twin's health of every account the refresh stored."""
    found = {}
    with db.begin() as conn:
        for account_id in stored(db):
            facts = twin.load_facts(conn, account_id)
            assert facts is not None
            found[account_id] = twin.health(cards, facts, SETTINGS, NOW)
    return found


def test_a_refresh_that_changes_nothing_rewrites_no_score(db: Database, cards: scorecards.Cards) -> None:
    small_world(db)
    compute.refresh(db, SETTINGS, cards, NOW)
    assert compute.refresh(db, SETTINGS, cards, NOW + timedelta(minutes=1)).changed == 0
    with db.begin() as conn:
        conn.execute(insert(schema.events), [event("c4", "payment_failed", NOW, "a4")])
    assert compute.refresh(db, SETTINGS, cards, NOW + timedelta(minutes=2)) == compute.Refreshed(4, 1)
    assert stored(db)["a4"] == ("tech", (0 + 0 + 20 * 40) / 100, "red")


def test_a_payment_failed_event_lowers_payments_and_adds_no_active_day(
    db: Database, cards: scorecards.Cards
) -> None:
    small_world(db)
    compute.refresh(db, SETTINGS, cards, NOW)
    before = measures(db, "a4")
    with db.begin() as conn:
        conn.execute(insert(schema.events), [event("c4", "payment_failed", NOW - DAY, "a4")])
    compute.refresh(db, SETTINGS, cards, NOW)
    after = measures(db, "a4")
    assert before["payments"] == (1.0, 30.0) and after["payments"] == (2.0, 0.0)
    assert after["adoption"] == before["adoption"] == (0.0, 0.0)


def test_no_scorecard_files_leave_every_account_unknown(db: Database, tmp_path: Path) -> None:
    small_world(db)
    none = scorecards.load(SETTINGS, [tmp_path])
    compute.refresh(db, SETTINGS, none, NOW)
    assert {band for _, _, band in stored(db).values()} == {"unknown"}


def test_an_account_that_is_gone_loses_its_health(db: Database, cards: scorecards.Cards) -> None:
    small_world(db)
    compute.refresh(db, SETTINGS, cards, NOW)
    with db.begin() as conn:
        conn.execute(schema.accounts.delete().where(schema.accounts.c.id == "a3"))
    assert compute.refresh(db, SETTINGS, cards, NOW).changed == 1
    assert "a3" not in stored(db)


NAMES = ("report_viewed", "report_viewed", "payment_failed", "ticket_opened", "survey_answered")


@st.composite
def worlds(draw: st.DrawFn) -> dict[Any, list[dict[str, Any]]]:
    n = draw(st.integers(1, 4))
    accounts = [
        account(
            f"a{i}",
            plan=draw(st.sampled_from([None, "enterprise", "pro"])),
            touch=draw(st.sampled_from(["tech", "low", "high"])),
            signed_up_at=draw(st.one_of(st.none(), st.floats(0, 400).map(lambda d: NOW - d * DAY))),
            traits=draw(st.sampled_from([{}, {"seats": 3}, {"seats": 25.5}, {"seats": "many"}])),
        )
        for i in range(n)
    ]
    people = [(f"c{i}{j}", f"a{i}") for i in range(n) for j in range(draw(st.integers(0, 3)))]
    contacts = [contact(cid, aid) for cid, aid in people]
    when = st.floats(0, 70).map(lambda d: NOW - d * DAY)
    events = []
    for _ in range(draw(st.integers(0, 30))):
        owner = draw(st.sampled_from([*people, ("nobody", "a0")]))
        row = event(owner[0], draw(st.sampled_from(NAMES)), draw(when), owner[1])
        events.append(row | {"source": draw(st.sampled_from(["product", "product", "engine"]))})
    answers = []
    for k in range(draw(st.integers(0, 6)) if people else 0):
        cid, aid = draw(st.sampled_from(people))
        kind = draw(st.sampled_from(["nps", "csat"]))
        score = draw(st.integers(0, 10) if kind == "nps" else st.integers(1, 5))
        answers.append(answer(f"d{k}", cid, aid, kind, score, draw(when)))
    revenue_rows = {
        (f"a{draw(st.integers(0, n - 1))}", NOW - draw(st.integers(0, 200)) * DAY): draw(
            st.sampled_from([0.0, 50.0, 80.0, 100.0])
        )
        for _ in range(draw(st.integers(0, 5)))
    }
    miles = {
        (
            f"a{draw(st.integers(0, n - 1))}",
            draw(st.sampled_from(["integration_connected", "first_report_created"])),
        )
        for _ in range(draw(st.integers(0, 3)))
    }
    scores = [
        account_score(
            f"a{i}",
            draw(st.floats(0, 60, allow_subnormal=False)),
            NOW - draw(st.floats(0, 20, allow_subnormal=False)) * DAY,
        )
        for i in range(n)
        if draw(st.booleans())
    ]
    return {
        schema.accounts: accounts,
        schema.contacts: contacts,
        schema.events: events,
        schema.survey_answers: answers,
        schema.table(schema.Revenue): [revenue(a, at, mrr) for (a, at), mrr in revenue_rows.items()],
        schema.account_milestones: [account_reached(a, m, NOW - 3 * DAY) for a, m in miles],
        schema.account_scores: scores,
    }


@pytest.fixture
def shared_db(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, scorecards.Cards]]:
    handle = open_database(url_for(backend))
    try:
        yield handle, write_cards(tmp_path_factory.mktemp("cards"), BIG, TECH)
    finally:
        drop_database(handle)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds())
def test_the_sql_refresh_and_the_python_twin_agree(
    shared_db: tuple[Database, scorecards.Cards], world: dict[Any, list[dict[str, Any]]]
) -> None:
    db, cards = shared_db
    with db.begin() as conn:
        clear(conn)
        for table, table_rows in world.items():
            if table_rows:
                conn.execute(insert(table), table_rows)
    compute.refresh(db, SETTINGS, cards, NOW)
    python = twins(db, cards)
    for account_id, (card, score, band) in stored(db).items():
        found = python[account_id]
        assert found.scorecard == card
        assert (found.score is None) == (score is None)
        if score is not None:
            assert found.score == pytest.approx(score, abs=0.0101)
        if score is None or found.score == score:
            assert found.band == band
        for measure_id, (value, points) in measures(db, account_id).items():
            want_value, want_points, _ = found.measures[measure_id]
            assert (value is None, points is None) == (want_value is None, want_points is None), measure_id
            if value is not None:
                assert value == pytest.approx(want_value, rel=1e-9, abs=1e-9), measure_id
            if points is not None:
                assert points == pytest.approx(want_points, rel=1e-9, abs=1e-9), measure_id
