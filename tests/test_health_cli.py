"""`engagement health`: bands by touch tier with MRR, MRR at risk, the largest drops; one account's card."""

from __future__ import annotations

import json
from datetime import timedelta

from engine_world import NOW, World
from health_world import revenue
from sqlalchemy import insert

from engagement.health import cards as scorecards
from engagement.health import compute, view
from engagement.store import schema

CARD = {
    "id": "level", "name": "Level health", "bands": {"green": 70, "yellow": 40},
    "measures": [
        {"id": "level", "weight": 3, "metric": {"trait": {"path": "level"}}, "points": [[0, 0], [100, 100]]},
        {"id": "nps", "weight": 1, "metric": {"nps": {"within": "90d"}}, "points": [[-100, 0], [100, 100]]},
    ],
}  # fmt: skip


MRR = {"big": 5000.0, "mid": 1200.0, "tiny": 50.0, "nothing": 20.0}


def world_with_health(world: World) -> scorecards.Cards:
    folder = world.root / "scorecards"
    folder.mkdir()
    (folder / "level.yaml").write_text(json.dumps(CARD))
    cards = scorecards.load(world.settings)
    world.accounts(
        {"id": "big", "name": "Big Co", "mrr": 5000, "touch": "high", "traits": {"level": 90}},
        {"id": "mid", "name": "Mid Co", "mrr": 1200, "touch": "low", "traits": {"level": 50}},
        {"id": "tiny", "name": "Tiny Co", "mrr": 50, "touch": "tech", "traits": {"level": 10}},
        {"id": "nothing", "name": "No Level", "mrr": 20, "touch": "tech"},
    )
    with world.db.begin() as conn:
        rows = [revenue(a, NOW - timedelta(days=30), mrr) for a, mrr in MRR.items()]
        conn.execute(insert(schema.table(schema.Revenue)), rows)
    compute.snapshot(world.db, world.settings, cards, NOW - timedelta(days=14))
    world.accounts({"id": "big", "name": "Big Co", "mrr": 5000, "touch": "high", "traits": {"level": 30}})
    return cards


def test_health_refresh_prints_bands_by_tier_with_mrr_at_risk_and_the_drops(world: World) -> None:
    world_with_health(world)
    result = world.cli("health", "--refresh", "--now", NOW.isoformat())
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "refreshed 4 account(s)" in out
    assert "MRR at risk (red): 5,050" in out  # big fell to 30 (red) and tiny is red
    drops = out[out.index("Largest drops") :]
    assert "Big Co" in drops and "-60.0" in drops and "Mid Co" not in drops


def test_health_without_a_snapshot_of_14_days_ago_says_why_there_are_no_drops(world: World) -> None:
    folder = world.settings.path(world.settings.health.dir)
    folder.mkdir()
    (folder / "level.yaml").write_text(json.dumps(CARD))
    world.accounts({"id": "big", "name": "Big Co", "mrr": 5000, "touch": "high", "traits": {"level": 30}})
    result = world.cli("health", "--refresh", "--now", NOW.isoformat())
    assert result.exit_code == 0, result.output
    assert "Largest drops in 14 days: none (no account's score is below its daily snapshot" in result.stdout


def test_health_account_shows_each_measure_value_points_and_share(world: World) -> None:
    cards = world_with_health(world)
    compute.refresh(world.db, world.settings, cards, NOW)
    with world.db.begin() as conn:
        found = view.account_health(conn, cards, "big")
    assert found is not None
    assert (found.scorecard_id, found.score, found.band) == ("level", 30.0, "red")
    assert [(m.id, m.value, m.points, m.weight, m.share) for m in found.measures] == [
        ("level", 30.0, 30.0, 3.0, 30.0),  # nps skipped: the level carries the whole score
        ("nps", None, None, 1.0, None),
    ]
    result = world.cli("health", "--account", "big", "--now", NOW.isoformat())
    assert result.exit_code == 0, result.output
    assert "Level health, score 30.0, red" in result.stdout
    assert "skipped" in result.stdout
    unknown = world.cli("health", "--account", "nobody", "--now", NOW.isoformat())
    assert unknown.exit_code == 1 and "--account: no account 'nobody'" in str(unknown.exception)


def test_health_without_a_refresh_says_how_to_get_one(world: World) -> None:
    world_with_health(world)
    with world.db.begin() as conn:
        conn.execute(schema.score_watermarks.delete())
    result = world.cli("health")
    assert result.exit_code == 1
    assert "engagement health --refresh" in str(result.exception)


def test_health_without_scorecards_points_at_the_engagement_bands(world: World) -> None:
    result = world.cli("health")
    assert result.exit_code == 1
    assert "engagement scores" in str(result.exception)


def test_the_scheduler_jobs_refresh_and_snapshot_health(world: World) -> None:
    from engagement.running import jobs

    assert jobs.health_refresh(world.engine, NOW) == {"scorecards": 0}  # no scorecard files: nothing to do
    world_with_health(world)
    assert jobs.health_refresh(world.engine, NOW) == {"accounts": 4, "changed": 1}
    assert jobs.health_snapshot(world.engine, NOW) == {"rows": 4}
    assert {job.id for job in jobs.JOBS} >= {"health-refresh", "health-snapshot"}
    assert jobs.every_health_refresh(world.settings).interval.total_seconds() == 3600  # type: ignore[attr-defined]
