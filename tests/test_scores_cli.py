"""`engagement scores`: bands across the base, one contact's or account's score and its top events."""

from __future__ import annotations

from datetime import timedelta

from engine_world import NOW, World
from sqlalchemy import insert

from engagement.store import schema


def history(world: World) -> None:
    # these contacts' bands are set to the account bands' numbers (60/30), which the assertions below reckon with
    world.configure("[scoring.contact_bands]\ngreen = 60\nyellow = 30\n")
    world.people(3)
    world.events(
        {"contact_id": "c000", "name": "first_report_created", "timestamp": NOW - timedelta(days=1)},
        *(
            {"contact_id": "c000", "name": "report_viewed", "timestamp": NOW - timedelta(days=d)}
            for d in range(1, 30)
        ),
    )
    with world.db.begin() as conn:
        conn.execute(
            insert(schema.responses),
            [
                {
                    "delivery_id": "d1",
                    "contact_id": "c001",
                    "journey_id": "welcome",
                    "step_id": "mail",
                    "kind": "unsubscribe",
                    "occurred_at": NOW - timedelta(days=2),
                    "dedupe_key": "u1",
                    "data": {},
                }
            ],
        )


def test_scores_shows_bands_and_the_lowest_accounts(world: World) -> None:
    history(world)
    result = world.cli("scores", "--now", NOW.isoformat())
    assert result.exit_code == 0, result.output
    assert "Health bands" in result.output and "Lowest-scoring accounts" in result.output
    band_rows = {
        line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 5
    }
    assert band_rows["green"].split("│")[3].strip() == "0"
    assert band_rows["yellow"].split("│")[3].strip() == "1"  # c000: 29 active days and a milestone, about 39
    assert band_rows["red"].split("│")[3].strip() == "2"


def test_scores_for_a_contact_lists_its_top_contributing_events(world: World) -> None:
    history(world)
    result = world.cli("scores", "--contact", "c000", "--now", NOW.isoformat(), "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "yellow" in result.output and "Top contributing events" in result.output
    assert "milestone" in result.output and "first_report_created" in result.output
    assert result.output.count("active_day") == 2  # the milestone, then the two most recent active days
    negative = world.cli("scores", "--contact", "c001", "--now", NOW.isoformat())
    assert "unsubscribe" in negative.output and "-20" in negative.output and "red" in negative.output


def test_scores_for_an_account_lists_its_contacts(world: World) -> None:
    history(world)
    result = world.cli("scores", "--account", "acme", "--now", NOW.isoformat())
    assert result.exit_code == 0, result.output
    assert "Contacts of acme" in result.output
    assert all(cid in result.output for cid in ("c000", "c001", "c002"))


def test_scores_for_an_unknown_contact_is_an_error(world: World) -> None:
    history(world)
    result = world.cli("scores", "--contact", "nobody")
    assert result.exit_code != 0
    assert "no contact 'nobody'" in str(result.exception)
