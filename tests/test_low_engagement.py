"""A `score: {lt: N}` journey enrolls exactly the contacts whose decayed score fell below N, tick by tick."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from backends import postgres_url
from condition_world import drop_database, open_database, pure_ids, sql_ids
from engine_world import NOW, World
from sqlalchemy import insert, select

from engagement.conditions.context import day_number
from engagement.conditions.parse import parse
from engagement.evaluation import tick
from engagement.store import schema

THRESHOLD = 8.0
CONDITION = {"score": {"lt": THRESHOLD}}
JOURNEY = """
id: low-engagement
name: Low engagement
status: active
trigger: {condition: {score: {lt: 8}}}
steps:
  - id: miss-you
    in_app: {title: We miss you, body: Here is what is new., cta: {label: Take a look, url: /whats-new}}
"""
TICKS = [NOW + timedelta(days=d) for d in (0, 5, 10, 15, 20, 30)]


@pytest.fixture
def low_world(backend: str, world: World) -> Iterator[World]:
    """The engine world on each backend (its SQLite file, or the PostgreSQL test database)."""
    if backend == "postgresql":
        world.db = open_database(postgres_url())
        try:
            yield world
        finally:
            drop_database(world.db)
    else:
        yield world


class History:
    """What each contact did, so the expected score is computed here independently of the engine."""

    def __init__(self) -> None:
        self.clicks: dict[str, list[datetime]] = {}  # the first click of each email
        self.active: dict[str, list[datetime]] = {}  # the first use on each active day

    def expected(self, contact_id: str, at: datetime, weights: dict[str, float], half_life: float) -> float:
        def worth(weight: float, when: datetime) -> float:
            return weight * 0.5 ** ((day_number(at) - day_number(when)) / half_life) if when <= at else 0.0

        clicks = sum(worth(weights["click"], t) for t in self.clicks.get(contact_id, []))
        return clicks + sum(worth(weights["active_day"], t) for t in self.active.get(contact_id, []))


def click(world: World, history: History, contact_id: str, at: datetime, delivery: str) -> None:
    rows = [
        {
            "delivery_id": delivery,
            "contact_id": contact_id,
            "journey_id": "newsletter",
            "step_id": "mail",
            "kind": kind,
            "occurred_at": at + timedelta(minutes=m),
            "dedupe_key": f"{delivery}:{kind}:{m}",
            "data": {},
        }
        # two clicks of one email count once
        for kind, m in (("delivered", 0), ("click", 1), ("click", 2))
    ]
    with world.db.begin() as conn:
        conn.execute(insert(schema.responses), rows)
    history.clicks.setdefault(contact_id, []).append(at + timedelta(minutes=1))


def test_a_low_score_journey_enrolls_exactly_who_fell_below_the_threshold_as_time_passes(
    low_world: World,
) -> None:
    world = low_world
    rng = random.Random(20261122)
    people = world.people(30)
    history = History()
    for index, contact_id in enumerate(people):
        for n in range(rng.randint(0, 6)):
            click(world, history, contact_id, NOW - timedelta(days=rng.uniform(0.5, 40)), f"d-{index}-{n}")
        for ago in rng.sample(range(1, 45), rng.randint(0, 10)):
            day = NOW.replace(hour=9, minute=0) - timedelta(days=ago)
            uses = [day + timedelta(hours=h) for h in (3, 0)]  # two uses on one day: one active day
            world.events(*({"contact_id": contact_id, "name": "report_viewed", "timestamp": t} for t in uses))
            history.active.setdefault(contact_id, []).append(day)
    champions = people[::10]
    world.journey(JOURNEY)
    journey = world.engine.catalog.journeys["low-engagement"]
    condition = parse(CONDITION)
    weights, half_life = world.settings.scoring.weights, world.settings.scoring.half_life_days
    enrolled: set[str] = set()
    fell_below_at: dict[str, datetime] = {}
    for at in TICKS:
        for contact_id in champions:  # they keep clicking, so they never fall below
            for n in range(4):
                click(
                    world, history, contact_id, at - timedelta(hours=n + 1), f"champ-{contact_id}-{at:%j}-{n}"
                )
        world.tick(at)
        ctx = tick.context(world.settings, journey, at)
        with world.db.begin() as conn:
            below_pure = pure_ids(conn, condition, ctx)
            assert sql_ids(conn, condition, ctx) == below_pure
            now_enrolled = set(
                conn.execute(
                    select(schema.enrollments.c.subject_id).where(
                        schema.enrollments.c.journey_id == "low-engagement"
                    )
                ).scalars()
            )
        below_here = {c for c in people if history.expected(c, at, weights, half_life) < THRESHOLD}
        assert below_pure == below_here, f"the pure evaluator disagrees with the history at {at}"
        # re_entry never: who enrolled at this tick is who is below now and was never enrolled before
        assert now_enrolled - enrolled == below_here - enrolled, f"at {at}"
        for contact_id in now_enrolled - enrolled:
            fell_below_at[contact_id] = at
        enrolled = now_enrolled
    scores_at_end = {c: history.expected(c, TICKS[-1], weights, half_life) for c in people}
    assert enrolled == {
        c for c in people if any(history.expected(c, t, weights, half_life) < THRESHOLD for t in TICKS)
    }
    # time did the work: some contacts were above the threshold at the start and decayed below it later
    assert any(at > NOW for at in fell_below_at.values())
    assert not enrolled & set(champions)
    assert all(scores_at_end[c] >= THRESHOLD for c in champions)
