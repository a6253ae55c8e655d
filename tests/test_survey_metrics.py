"""The nps and csat metrics: each contact's latest answer in the window, per account, set-based (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from backends import url_for
from condition_world import NOW, World, account, answer, contact, drop_database, open_database, store

from engagement.scores import survey_metrics
from engagement.store.database import Database

D = timedelta(days=1)


@pytest.fixture(scope="module")
def db(backend: str) -> Iterator[Database]:
    database = open_database(url_for(backend))
    yield database
    drop_database(database)


def world() -> World:
    rows = [
        # acme: c1 promoter (its older detractor answer is superseded), c2 passive, c3 detractor, c4 too old
        ("c1", "a1", "nps", 2, NOW - 50 * D),
        ("c1", "a1", "nps", 10, NOW - 3 * D),
        ("c2", "a1", "nps", 8, NOW - 3 * D),
        ("c3", "a1", "nps", 6, NOW - D),
        ("c4", "a1", "nps", 0, NOW - 200 * D),
        ("c4", "a1", "nps", 0, NOW + D),  # after now: not counted
        # beta: two promoters; CSAT 3 (2 + 1) and 5 (4 + 1) per condition_world.answer's 1 + score % 5
        ("c5", "a2", "nps", 9, NOW - 10 * D),
        ("c6", "a2", "nps", 10, NOW - 10 * D),
        ("c5", "a2", "csat", 2, NOW - 10 * D),
        ("c6", "a2", "csat", 0, NOW - 100 * D),
        ("c6", "a2", "csat", 4, NOW - 20 * D),
    ]
    return World(
        accounts=[account("a1"), account("a2"), account("a3")],
        contacts=[
            contact(c, a)
            for c, a in (("c1", "a1"), ("c2", "a1"), ("c3", "a1"), ("c4", "a1"), ("c5", "a2"), ("c6", "a2"))
        ],
        survey_answers=[
            answer(c, acct, kind, score, at, i) for i, (c, acct, kind, score, at) in enumerate(rows)
        ],
    )


def test_nps_per_account_is_promoters_minus_detractors_of_each_contacts_latest_answer(db: Database) -> None:
    with db.begin() as conn:
        store(conn, world())
        found = survey_metrics.nps_by_account(conn, NOW, timedelta(days=180))
    assert found == {"a1": (pytest.approx(0.0), 3), "a2": (pytest.approx(100.0), 2)}


def test_a_shorter_window_leaves_older_answers_out_and_an_account_without_answers_has_no_value(
    db: Database,
) -> None:
    with db.begin() as conn:
        store(conn, world())
        found = survey_metrics.nps_by_account(conn, NOW, timedelta(days=2))
    assert found == {"a1": (pytest.approx(-100.0), 1)}  # only c3's detractor answer is that recent


def test_csat_per_account_is_the_mean_of_each_contacts_latest_answer(db: Database) -> None:
    with db.begin() as conn:
        store(conn, world())
        found = survey_metrics.csat_by_account(conn, NOW, timedelta(days=90))
    assert found == {"a2": (pytest.approx(4.0), 2)}  # 3 and 5 (c6's 1 is outside the window)
