"""`engagement report health`: renewal rate and churn share by the band each account had at the lead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from condition_world import account
from engine_world import World
from health_world import fresh_database, revenue
from sqlalchemy import insert

from engagement.health import calibration
from engagement.reports.months import Months, number
from engagement.store import schema
from engagement.store.database import Database

NOW = datetime(2026, 6, 15, tzinfo=UTC)
MARCH_TO_MAY = Months(number(2026, 3), number(2026, 5))
LEAD = timedelta(days=30)


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    with fresh_database(backend) as handle:
        yield handle


def renewal(db: Database, account_id: str, due: date, band: str | None, renews: bool) -> None:
    """An account paying since January, due on `due`, with `band` in its snapshot 30 days before."""
    paid = datetime(2026, 1, 5, tzinfo=UTC)
    at_due = datetime.combine(due, datetime.min.time(), UTC)
    rows = [
        revenue(account_id, paid, 100.0, due),
        revenue(account_id, at_due, 100.0 if renews else 0.0),
    ]
    with db.begin() as conn:
        conn.execute(insert(schema.accounts), [account(account_id)])
        conn.execute(insert(schema.table(schema.Revenue)), rows)
        if band is not None:
            snap = {
                "day": due - LEAD,
                "account_id": account_id,
                "scorecard_id": "c",
                "score": 50.0,
                "band": band,
            }
            conn.execute(insert(schema.health_snapshots), [snap])


def test_renewals_and_churn_are_counted_by_the_band_at_the_lead(db: Database) -> None:
    renewal(db, "g1", date(2026, 3, 10), "green", True)
    renewal(db, "g2", date(2026, 4, 10), "green", True)
    renewal(db, "y1", date(2026, 4, 20), "yellow", True)
    renewal(db, "r1", date(2026, 5, 1), "red", False)
    renewal(db, "r2", date(2026, 5, 2), "red", True)
    renewal(db, "n1", date(2026, 5, 3), None, True)  # no snapshot 30 days before
    renewal(db, "late", date(2026, 6, 1), "red", False)  # after the range
    made = calibration.build(db, MARCH_TO_MAY, LEAD, NOW, min_sample=5)
    got = {r.band: (r.due, r.renewed, r.churned) for r in made.rows}
    assert got == {
        "green": (2, 2, 0),
        "yellow": (1, 1, 0),
        "red": (2, 1, 1),
        "unknown": (0, 0, 0),
        "none": (1, 1, 0),
    }
    assert made.churn_share(made.rows[2]) == 1.0  # the one churn was red
    assert made.verdict.startswith("the score separates renewals from churn: green renews 100%, red 50%")


def test_a_score_that_does_not_separate_says_so(db: Database) -> None:
    renewal(db, "g1", date(2026, 3, 10), "green", False)
    renewal(db, "g2", date(2026, 3, 11), "green", True)
    renewal(db, "r1", date(2026, 4, 1), "red", True)
    renewal(db, "r2", date(2026, 4, 2), "red", True)
    made = calibration.build(db, MARCH_TO_MAY, LEAD, NOW, min_sample=4)
    assert made.verdict.startswith("the score does NOT separate")
    assert calibration.build(db, MARCH_TO_MAY, LEAD, NOW, min_sample=30).verdict.startswith(
        "too few renewals"
    )


def test_report_health_prints_the_bands_and_the_verdict_as_json(world: World) -> None:
    renewal(world.db, "g1", date(2026, 3, 10), "green", True)
    world.configure('[reports]\ncalibration_lead = "30d"\n')
    args = ["report", "health", "--from", "2026-03", "--to", "2026-05", "--now", NOW.isoformat()]
    result = world.cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["lead_days"] == 30 and data["bands"][0] == {
        "band": "green", "renewals_due": 1, "renewed": 1, "renewal_rate": 1.0, "churned": 0, "churn_share": None,
    }  # fmt: skip
    table = world.cli(*args)
    assert "too few renewals" in table.stdout


def test_a_missed_snapshot_day_takes_the_latest_of_the_week_before(db: Database) -> None:
    renewal(db, "g1", date(2026, 3, 10), None, True)
    renewal(db, "g2", date(2026, 3, 20), None, True)
    with db.begin() as conn:
        conn.execute(
            insert(schema.health_snapshots),
            [
                {"day": date(2026, 3, 10) - LEAD - timedelta(days=3), "account_id": "g1", "band": "green"},
                {"day": date(2026, 3, 20) - LEAD - timedelta(days=8), "account_id": "g2", "band": "green"},
            ],
        )
    made = calibration.build(db, MARCH_TO_MAY, LEAD, NOW)
    assert {r.band: r.due for r in made.rows if r.due} == {"green": 1, "none": 1}
