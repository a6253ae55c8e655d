"""Reports split by variant and by journey version: counts hand-checked, differences to the first group."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from engine_world import NOW, World
from test_variants import HEAD, HELLO

from engagement.engine import load_catalog
from engagement.evaluation import variants as assignment
from engagement.reports import period, splits, stats
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")

JOURNEY = HEAD + "goal: {milestone: first_report_created}\nsteps:\n" + HELLO + "  - wait: 3d\n"
LATER = NOW + timedelta(hours=2)


def respond(world: World, rows: list[dict[str, object]], kind: str, again: str = "") -> None:
    with world.db.begin() as conn:
        conn.execute(
            schema.responses.insert(),
            [
                {
                    "delivery_id": r["id"],
                    "contact_id": r["contact_id"],
                    "journey_id": r["journey_id"],
                    "step_id": r["step_id"],
                    "kind": kind,
                    "occurred_at": NOW + timedelta(minutes=30),
                    "dedupe_key": f"{r['id']}:{kind}{again}",
                }
                for r in rows
            ],
        )


@pytest.fixture
def sent(world: World) -> dict[str, list[dict[str, object]]]:
    """40 welcome emails sent at NOW, by variant in recipient order."""
    world.journey(JOURNEY)
    people = world.people(40)
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": NOW} for p in people))
    world.tick(NOW)
    rows = sorted(world.rows(schema.deliveries), key=lambda r: r["recipient"])
    by: dict[str, list[dict[str, object]]] = {"plain": [], "warm": []}
    for row in rows:
        by[row["variant"]].append(row)
    return by


def test_per_variant_sends_opens_clicks_and_conversions_are_the_hand_counted_ones(
    world: World, sent: dict[str, list[dict[str, object]]]
) -> None:
    plain, warm = sent["plain"], sent["warm"]
    assert len(plain) >= 5 and len(warm) >= 5 and len(plain) + len(warm) == 40
    respond(world, plain[:2] + warm[:5], "open")
    respond(world, plain[:2], "open", again="#2")  # a second open of the same email counts once
    respond(world, plain[:1] + warm[:3], "click")
    converts = [r["contact_id"] for r in plain[:1] + warm[:4]]
    world.events(
        *(
            {"contact_id": c, "name": "first_report_created", "timestamp": NOW + timedelta(hours=1)}
            for c in converts
        )
    )
    world.tick(LATER)

    with world.db.begin() as conn:
        groups = splits.variants(
            conn, "welcome", period.choose(LATER, "7d", None, None), {"hello": ["plain", "warm"]}
        )

    n_p, n_w = len(plain), len(warm)
    assert [(g.key, g.sends, g.opens, g.clicks, g.converted) for g in groups] == [
        ("plain", n_p, 2, 1, 1),
        ("warm", n_w, 5, 3, 4),
    ]
    first, second = groups
    assert first.differences == {"open_rate": None, "click_rate": None, "conversion_rate": None}
    assert second.difference("conversion_rate", first) == pytest.approx(4 / n_w - 1 / n_p)
    assert second.differences["conversion_rate"] == stats.newcombe(4, n_w, 1, n_p)
    assert second.differences["open_rate"] == stats.newcombe(5, n_w, 2, n_p)


def test_the_cli_prints_the_variant_split_as_json_and_as_a_table(
    world: World, sent: dict[str, list[dict[str, object]]]
) -> None:
    shown = world.cli(
        "report", "--journey", "welcome", "--variants", "--format", "json", "--now", LATER.isoformat()
    )

    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)
    assert [(r["group"], r["sends"]) for r in found] == [
        ("plain", len(sent["plain"])),
        ("warm", len(sent["warm"])),
    ]
    assert found[1]["open_rate_difference"] == 0.0 and found[1]["open_rate_low"] is not None
    table = world.cli("report", "--journey", "welcome", "--variants", "--now", LATER.isoformat())
    assert table.exit_code == 0 and "warm" in table.output
    refused = world.cli("report", "--variants")
    assert "--journey" in str(refused.exception)


def test_a_split_by_version_puts_each_version_oldest_first_with_its_own_entrants(
    world: World, sent: dict[str, list[dict[str, object]]]
) -> None:
    first = load_catalog(world.settings).get("welcome").version
    world.journey(JOURNEY.replace("Welcome, {{", "Hello, {{"))
    second = load_catalog(world.settings).get("welcome").version
    later = world.people(6, prefix="n")
    world.events(*({"contact_id": p, "name": "signed_up", "timestamp": LATER} for p in later))
    world.events(
        {"contact_id": "n000", "name": "first_report_created", "timestamp": LATER + timedelta(minutes=1)}
    )
    world.tick(LATER)
    world.tick(LATER + timedelta(hours=1))

    with world.db.begin() as conn:
        groups = splits.versions(conn, "welcome", period.choose(LATER + timedelta(hours=1), "7d", None, None))

    assert [(g.key, g.sends, g.entered, g.converted) for g in groups] == [
        (first, 40, 40, 0),
        (second, 6, 6, 1),
    ]
    assert groups[1].differences["conversion_rate"] == stats.newcombe(1, 6, 0, 40)
    shown = world.cli(
        "report",
        "--journey",
        "welcome",
        "--by",
        "version",
        "--format",
        "csv",
        "--now",
        (LATER + timedelta(hours=1)).isoformat(),
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[1].startswith(f",{first},40,")


def test_variant_ids_in_reports_are_the_ones_recorded_not_recomputed(
    world: World, sent: dict[str, list[dict[str, object]]]
) -> None:
    journey = load_catalog(world.settings).get("welcome")
    for name, rows in sent.items():
        assert {assignment.variant_for(journey, "hello", str(r["recipient"])) for r in rows} == {name}


def test_a_variant_with_no_sends_in_the_period_is_listed_with_zeros(
    world: World, sent: dict[str, list[dict[str, object]]]
) -> None:
    before = period.choose(NOW, "7d", None, None)  # ends at NOW: the sends at NOW fall after it
    with world.db.begin() as conn:
        groups = splits.variants(conn, "welcome", before, {"hello": ["plain", "warm"]})

    assert [(g.step_id, g.key, g.sends, g.opens, g.converted) for g in groups] == [
        ("hello", "plain", 0, 0, 0),
        ("hello", "warm", 0, 0, 0),
    ]
    assert groups[1].differences == {"open_rate": None, "click_rate": None, "conversion_rate": None}
    assert groups[1].rate("open_rate") is None
