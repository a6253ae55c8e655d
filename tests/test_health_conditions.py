"""Health conditions read the scorecards: `health`, `health_score`, `health_change`, in SQL and in Python,
and a refresh that moves a score makes incremental evaluation see its account."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from condition_world import pure_ids, sql_ids
from engine_world import NOW, World
from sqlalchemy import update

from engagement.conditions import parse
from engagement.health import cards as scorecards
from engagement.health import compute
from engagement.scores import scoring
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")
CARD = {  # the score is the account's `level` trait, 0 to 100; no trait: unknown
    "id": "level", "bands": {"green": 70, "yellow": 40},
    "measures": [{"id": "level", "weight": 1, "metric": {"trait": {"path": "level"}}, "points": [[0, 0], [100, 100]]}],
}  # fmt: skip
BEFORE = {"fell20": 80, "fell15": 60, "fell10": 50, "rose": 30, "gone": 90}
AFTER = {"fell20": 60, "fell15": 45, "fell10": 40, "rose": 50, "new": 10}


def with_scorecard(world: World) -> scorecards.Cards:
    folder = world.root / "scorecards"
    folder.mkdir(exist_ok=True)
    (folder / "level.yaml").write_text(json.dumps(CARD))
    return scorecards.load(world.settings)


def levels(world: World, values: dict[str, float]) -> None:
    world.accounts(*({"id": a, "name": a, "traits": {"level": v}} for a, v in values.items()))


def set_level(world: World, account: str, value: float) -> None:
    with world.db.begin() as conn:
        conn.execute(
            update(schema.accounts).where(schema.accounts.c.id == account).values(traits={"level": value})
        )


def health_history(world: World) -> scorecards.Cards:
    """Snapshots 14 days ago at BEFORE's levels; now AFTER's ("gone" lost its trait: unknown)."""
    cards = with_scorecard(world)
    levels(world, BEFORE)
    compute.snapshot(world.db, world.settings, cards, NOW - timedelta(days=14))
    levels(world, AFTER)
    set_level(world, "gone", "n/a")  # type: ignore[arg-type]
    compute.refresh(world.db, world.settings, cards, NOW)
    return cards


def test_a_health_change_trigger_enrolls_exactly_the_accounts_whose_score_fell_that_far(world: World) -> None:
    health_history(world)
    world.journey("""
        id: falling
        name: Falling health
        status: active
        audience: account
        trigger: {condition: {health_change: {within: 14d, lte: -15}}}
        steps:
          - wait: 1d
    """)
    world.tick(NOW)
    assert sorted(r["subject_id"] for r in world.rows(schema.enrollments)) == ["fell15", "fell20"]


@pytest.mark.parametrize(
    ("raw", "audience"),
    [
        ({"health": "red"}, "account"),
        ({"health": "yellow"}, "contact"),
        ({"health_score": {"gte": 45}}, "account"),
        ({"health_score": {"lt": 55}}, "contact"),
        ({"health_change": {"within": "14d", "lte": -15}}, "account"),
        ({"health_change": {"within": "2w", "gt": 0}}, "contact"),
        ({"not": {"health_change": {"within": "14d", "lte": -15}}}, "account"),
    ],
)
def test_health_conditions_agree_in_sql_and_python(
    world: World, raw: dict[str, object], audience: str
) -> None:
    health_history(world)
    world.people(1, account="fell20", prefix="p")
    world.people(1, account="rose", prefix="q")
    cond = parse.parse(raw, audience)  # type: ignore[arg-type]
    ctx = scoring.context(world.settings, NOW, audience)
    assert ctx.scorecards
    with world.db.begin() as conn:
        found = sql_ids(conn, cond, ctx)
        assert found == pure_ids(conn, cond, ctx)
    assert found  # each case selects someone


def test_health_reads_the_engagement_bands_where_no_scorecard_file_exists(world: World) -> None:
    assert not scoring.context(world.settings, NOW, "account").scorecards
    with_scorecard(world)
    assert scoring.context(world.settings, NOW, "account").scorecards


def test_a_refresh_that_moves_a_band_makes_the_next_tick_see_the_account(world: World) -> None:
    cards = with_scorecard(world)
    levels(world, {"low": 10, "high": 90})
    compute.refresh(world.db, world.settings, cards, NOW)
    world.journey("""
        id: red-health
        name: Red health
        status: active
        audience: account
        trigger: {condition: {health: red}}
        steps:
          - wait: 1d
    """)
    world.tick(NOW)
    assert [r["subject_id"] for r in world.rows(schema.enrollments)] == ["low"]
    set_level(world, "high", 20)  # the account row changes: seen as changed, but still green until a refresh
    world.tick(NOW + timedelta(minutes=1))
    assert len(world.rows(schema.enrollments)) == 1
    assert compute.refresh(world.db, world.settings, cards, NOW + timedelta(minutes=2)).changed == 1
    world.tick(NOW + timedelta(minutes=3))  # only the refresh's health_score write says `high` changed
    assert sorted(r["subject_id"] for r in world.rows(schema.enrollments)) == ["high", "low"]
