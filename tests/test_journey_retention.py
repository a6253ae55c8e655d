"""Journeys judged on retention: accounts still paying and net MRR retained a window after entry,
treatment vs holdout, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from backends import url_for
from engine_world import NOW, World
from sqlalchemy import insert, text

from engagement import vocab
from engagement.clock import ManualClock
from engagement.evaluation import holdout
from engagement.reports import build, digest, journey_retention, stats
from engagement.reports.build import JourneyInfo
from engagement.reports.model import Retention, RetentionGroup
from engagement.reports.period import Period
from engagement.store import database, schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)
WINDOW = timedelta(days=90)
revenue = schema.table(schema.Revenue)


def at(days: float) -> datetime:
    return NOW + timedelta(days=days)


# --- a hand-built handful, every figure worked out by hand ---------------------------------------


ENTRIES = [  # (subject, account, holdout, entered)
    ("c1", "t1", False, at(0)),
    ("c1b", "t1", True, at(5)),  # t1's second contact, later: t1 counts once, in its first entry's group
    ("c2", "t2", False, at(0)),
    ("c3", "t3", False, at(1)),
    ("c4", "t4", False, at(2)),  # t4 paid nothing at entry: an entry, but not judged on retention
    ("c5", "t5", False, at(50)),  # entered at day 50: its window ends at day 140, after `now`: pending
    ("c6", "h1", True, at(0)),
    ("c7", "h2", True, at(3)),
    ("c8", None, False, at(0)),  # no account: nothing to pay, left out
    ("c9", "t9", False, at(-10)),  # entered before the period: not in this report
]
MRR = [  # (account, effective day, mrr)
    ("t1", -30, 100.0),  # t1: 100 at entry, still 100 at day 90
    ("t2", -30, 200.0),
    ("t2", 40, 0.0),  # t2 churned at day 40: 200 at entry, 0 at day 90
    ("t3", -1, 300.0),
    ("t3", 60, 330.0),  # t3 expanded: 300 at entry, 330 at day 91
    ("t3", 95, 0.0),  # t3 churned at day 95, after its window (day 91) ended: does not count
    ("t4", 10, 50.0),  # t4 started paying after its entry
    ("t5", -30, 80.0),
    ("h1", -30, 100.0),
    ("h1", 20, 0.0),  # h1 churned
    ("h2", -30, 100.0),
    ("h2", 93, 140.0),  # h2 expanded exactly at its window's end (day 3 + 90): counts
    ("t9", -30, 999.0),
]
HAND_PERIOD = Period(at(-1), at(60))


def seed(db: database.Database) -> None:
    """Seven accounts' entries into journey `j` and their revenue, written straight into the tables."""
    with db.begin() as conn:
        conn.execute(
            insert(schema.enrollments),
            [
                {
                    "journey_id": "j",
                    "audience": "contact",
                    "subject_id": s,
                    "account_id": a,
                    "holdout": h,
                    "state": "ended",
                    "outcome": "holdout" if h else "completed",
                    "entered_at": when,
                }
                for s, a, h, when in ENTRIES
            ],
        )
        conn.execute(
            insert(revenue),
            [{"account_id": a, "effective_at": at(d), "mrr": m, "source": "test"} for a, d, m in MRR],
        )


@pytest.fixture(scope="module")
def hand(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retention]:
    """The hand-built entries, judged at day 100 on each backend."""
    folder = tmp_path_factory.mktemp("retention") if backend == "sqlite" else None
    db = database.Database(url_for(backend, folder))
    schema.metadata.drop_all(db.engine)
    db.create_all()
    seed(db)
    with db.begin() as conn:
        found = journey_retention.retention(conn, HAND_PERIOD, ["j"], WINDOW, at(100), 2)
    try:
        yield found["j"]
    finally:
        schema.metadata.drop_all(db.engine)
        db.dispose()


def test_each_account_counts_once_in_its_first_entrys_group_and_young_entries_are_pending(
    hand: Retention,
) -> None:
    assert hand.treatment == RetentionGroup(
        group="treatment",
        accounts=5,  # t1 t2 t3 t4 t5
        pending=1,  # t5
        paying_at_entry=3,  # t1 t2 t3
        still_paying=2,  # t1 t3
        mrr_at_entry=600.0,  # 100 + 200 + 300
        mrr_after=430.0,  # 100 + 0 + 330
    )
    assert hand.holdout == RetentionGroup("holdout", 2, 0, 2, 1, 200.0, 140.0)  # h1: 100 → 0, h2: 100 → 140


def test_the_lifts_and_their_intervals_match_the_hand_computed_figures(hand: Retention) -> None:
    # still paying: 2/3 against 1/2, so +16.7 pts; Newcombe's method 10 from the Wilson intervals
    # 2/3: [0.20766, 0.93851] and 1/2: [0.09453, 0.90547] give
    # 1/6 - sqrt((2/3 - 0.20766)^2 + (0.90547 - 1/2)^2) = 1/6 - 0.61245 = -0.44578 and
    # 1/6 + sqrt((0.93851 - 2/3)^2 + (1/2 - 0.09453)^2) = 1/6 + 0.48816 = 0.65483
    assert hand.kept_lift == pytest.approx(2 / 3 - 1 / 2)
    assert (hand.kept_low, hand.kept_high) == (
        pytest.approx(-0.44578, abs=1e-4),
        pytest.approx(0.65483, abs=1e-4),
    )
    # net MRR retained: 430/600 = 0.7167 against 140/200 = 0.70.
    # Treatment residuals y - R x: 100 - 71.67, 0 - 143.33, 330 - 215 -> squares 802.8 + 20544.4 + 13225 =
    # 34572.2; variance 3/2 * 34572.2 / 600^2 = 0.14405. Holdout: 0 - 70, 140 - 70 -> 9800;
    # 2/1 * 9800 / 200^2 = 0.49. Interval 0.01667 -+ 1.96 * sqrt(0.63405) = 0.01667 -+ 1.5607.
    assert hand.nrr_lift == pytest.approx(430 / 600 - 140 / 200)
    assert (hand.nrr_low, hand.nrr_high) == (
        pytest.approx(-1.5440, abs=5e-4),
        pytest.approx(1.5774, abs=5e-4),
    )
    assert hand.window_days == 90
    assert hand.verdict == "no clear difference: +16.7 pts [-44.6, +65.5]"


def test_a_journey_without_holdout_or_judged_entries_says_why() -> None:
    nobody = RetentionGroup("holdout", 0, 0, 0, 0, 0.0, 0.0)
    young = RetentionGroup("treatment", 40, 40, 0, 0, 0.0, 0.0)
    held_young = RetentionGroup("holdout", 9, 9, 0, 0, 0.0, 0.0)
    few = RetentionGroup("treatment", 20, 2, 18, 15, 1800.0, 1500.0)

    assert journey_retention.verdict(young, nobody, None, None, WINDOW, 30).startswith("no holdout")
    assert journey_retention.verdict(young, held_young, None, None, WINDOW, 30) == (
        "pending: 49 entries younger than 90d"
    )
    interval = stats.Interval(-0.1, 0.3)
    assert journey_retention.verdict(few, few, 0.0, interval, WINDOW, 30) == (
        "not enough data yet (needs 30 paying accounts judged per group, 4 pending)"
    )
    assert journey_retention.verdict(few, few, 0.05, stats.Interval(0.01, 0.09), WINDOW, 10) == (
        "kept more customers: +5.0 pts [+1.0, +9.0]"
    )
    assert journey_retention.verdict(few, few, -0.05, stats.Interval(-0.09, -0.01), WINDOW, 10).startswith(
        "kept fewer customers: -5.0 pts"
    )


# --- the engine's ticks on a world whose truth is known -----------------------------------------

ACCOUNTS = 400
LATE = 60  # accounts whose contacts sign up at day 80: still pending at day 100
KEEP = {False: 0.90, True: 0.70}  # the truth: P(still paying at day 90) in treatment, in holdout
GROW = {False: 1.10, True: 1.00}  # and what a kept account pays then, relative to its entry MRR
JOURNEY = """
id: b2b-renewal
name: B2B renewal
status: active
trigger: {event: signed_up}
holdout: {share: 20%, by: account}
steps:
  - id: hello
    in_app: {title: "Hi {{ contact.first_name }}"}
"""


def test_the_retention_lift_of_an_account_holdout_journey_covers_the_known_truth(world: World) -> None:
    world.journey(JOURNEY)
    rng = random.Random(2026)
    accounts = [f"a{i:03d}" for i in range(ACCOUNTS)]
    world.accounts(*({"id": a, "name": a, "plan": "pro"} for a in accounts))
    contacts = [(f"{a}-c{k}", a) for a in accounts for k in range(3)]
    world.contacts(*({"id": c, "account_id": a, "email": f"{c}@example.com"} for c, a in contacts))
    late = set(accounts[-LATE:])
    # the Python twin says who is held out, before any tick
    held = {
        a: holdout.in_holdout("b2b-renewal", f"{a}-c0", 0.2, by=vocab.HoldoutBy.ACCOUNT, account_id=a)
        for a in accounts
    }
    expected: dict[bool, dict[str, Any]] = {
        h: {"accounts": 0, "pending": 0, "still": 0, "x": 0.0, "y": 0.0} for h in (False, True)
    }
    rows = []
    seen = {False: 0, True: 0}
    for a in accounts:
        entry = at(80) if a in late else at(0)
        start = float(rng.choice((50, 100, 200, 400)))
        # exactly the truth's share of each group's judged accounts is kept: 9 in 10, 7 in 10
        kept = seen[held[a]] % 10 < round(10 * KEEP[held[a]])
        seen[held[a]] += a not in late
        after = round(start * GROW[held[a]], 2) if kept else 0.0
        rows.append(
            {"account_id": a, "effective_at": entry - timedelta(days=30), "mrr": start, "source": "test"}
        )
        rows.append(
            {"account_id": a, "effective_at": entry + timedelta(days=45), "mrr": after, "source": "test"}
        )
        group = expected[held[a]]
        group["accounts"] += 1
        if a in late:
            group["pending"] += 1
        else:
            group["still"] += kept
            group["x"] += start
            group["y"] += after
    with world.db.begin() as conn:
        conn.execute(insert(revenue), rows)
    first = [c for c, a in contacts if a not in late]
    world.events(
        *({"contact_id": c, "name": "signed_up", "timestamp": at(0) - timedelta(hours=1)} for c in first)
    )
    for day in range(0, 81, 10):  # the engine's ticks, on an injected clock
        if day == 80:
            world.events(
                *(
                    {"contact_id": c, "name": "signed_up", "timestamp": at(80) - timedelta(hours=1)}
                    for c, a in contacts
                    if a in late
                )
            )
        world.tick(at(day))

    enrolled = world.rows(schema.enrollments)
    assert len(enrolled) == 3 * ACCOUNTS
    assert all(row["holdout"] == held[row["account_id"]] for row in enrolled)  # the SQL twin agrees
    info = {"b2b-renewal": JourneyInfo("b2b-renewal", "B2B renewal", "contact", None)}
    report = build.build(world.db, info, Period(at(-1), at(100)), at(100), retention_window=WINDOW)
    found = report.journey("b2b-renewal").retention
    assert found is not None

    for h, group in ((False, found.treatment), (True, found.holdout)):
        want = expected[h]
        assert (group.accounts, group.pending) == (want["accounts"], want["pending"])
        assert group.paying_at_entry == want["accounts"] - want["pending"]
        assert group.still_paying == want["still"]
        assert (group.mrr_at_entry, group.mrr_after) == (pytest.approx(want["x"]), pytest.approx(want["y"]))
    assert 50 <= found.holdout.accounts <= 110  # about 20% of 400
    assert found.kept_lift == pytest.approx(
        found.treatment.still_paying / found.treatment.paying_at_entry
        - found.holdout.still_paying / found.holdout.paying_at_entry
    )
    truth_kept = KEEP[False] - KEEP[True]
    truth_nrr = KEEP[False] * GROW[False] - KEEP[True] * GROW[True]
    assert found.kept_low is not None and found.kept_high is not None
    assert found.nrr_low is not None and found.nrr_high is not None
    assert found.kept_low <= truth_kept <= found.kept_high
    assert found.nrr_low <= truth_nrr <= found.nrr_high
    assert found.kept_low > 0 and found.verdict.startswith("kept more customers: +")
    assert not math.isclose(found.kept_high - found.kept_low, 0)


def test_contacts_of_one_account_share_its_group_and_a_plain_share_stays_per_contact(world: World) -> None:
    world.journey(JOURNEY.replace("id: b2b-renewal", "id: by-account"))
    world.journey(
        JOURNEY.replace("id: b2b-renewal", "id: per-contact").replace("{share: 20%, by: account}", "20%")
    )
    world.journey(JOURNEY.replace("id: b2b-renewal", "id: share-only").replace(", by: account", ""))
    accounts = [f"acc{i:02d}" for i in range(60)]
    world.accounts(*({"id": a, "name": a, "plan": "pro"} for a in accounts))
    contacts = {f"{a}-{k}": a for a in accounts for k in range(4)}
    world.contacts(*({"id": c, "account_id": a, "email": f"{c}@example.com"} for c, a in contacts.items()))
    world.events(
        *({"contact_id": c, "name": "signed_up", "timestamp": NOW - timedelta(hours=1)} for c in contacts)
    )

    world.tick(NOW)

    groups: dict[str, dict[str, bool]] = {}
    for row in world.rows(schema.enrollments):
        groups.setdefault(row["journey_id"], {})[row["subject_id"]] = row["holdout"]
    by_account = groups["by-account"]
    assert {len({by_account[c] for c, a in contacts.items() if a == acc}) for acc in accounts} == {1}
    assert by_account == {
        c: holdout.in_holdout("by-account", c, 0.2, by=vocab.HoldoutBy.ACCOUNT, account_id=a)
        for c, a in contacts.items()
    }
    assert any(by_account.values()) and not all(by_account.values())
    for journey in ("per-contact", "share-only"):
        assert groups[journey] == {c: holdout.in_holdout(journey, c, 0.2) for c in contacts}
    per_account = {
        acc: {groups["per-contact"][c] for c, a in contacts.items() if a == acc} for acc in accounts
    }
    assert any(len(seen) == 2 for seen in per_account.values())  # per contact, accounts are split


def test_a_bad_account_holdout_is_reported_with_its_file_line_and_field(world: World) -> None:
    path = world.journey(JOURNEY.replace("id: b2b-renewal", "id: bad-share").replace("20%", "120%"))
    other = world.journey(JOURNEY.replace("id: b2b-renewal", "id: bad-by").replace("by: account", "by: team"))

    result = world.cli("validate", str(path), str(other))

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(f"{path}:6: holdout.share:" in line and "120%" in line for line in lines), lines
    assert any(f"{other}:6: holdout.by:" in line and "account" in line for line in lines), lines


# --- every format shows it ---------------------------------------------------------------------

HAND_RANGE = ("--from", "2026-03-01", "--to", "2026-04-30", "--now", at(100).isoformat())


def test_every_report_format_shows_each_groups_retention_and_the_verdict(
    world: World, tmp_path: Path
) -> None:
    seed(world.db)
    world.configure("[reports]\nmin_sample = 2\n")

    table = world.cli("report", *HAND_RANGE)
    rows = list(csv.DictReader(io.StringIO(world.cli("report", *HAND_RANGE, "--format", "csv").stdout)))
    doc = json.loads(world.cli("report", *HAND_RANGE, "--format", "json").stdout)
    page = tmp_path / "report.html"
    world.cli("report", *HAND_RANGE, "--format", "html", "--out", str(page))

    assert table.exit_code == 0, table.output
    assert "j: retention, 90d after entry" in table.stdout
    assert "retention: no clear difference: +16.7 pts [-44.6, +65.5]" in table.stdout
    cells = {(r["section"], r["group"], r["metric"]): r["value"] for r in rows if r["journey"] == "j"}
    assert cells[("retention", "treatment", "still_paying")] == "2"
    assert cells[("retention", "treatment", "pending")] == "1"
    assert float(cells[("retention", "holdout", "net_mrr_retained")]) == pytest.approx(0.7)
    assert cells[("retention_lift", "", "verdict")] == "no clear difference: +16.7 pts [-44.6, +65.5]"
    [journey] = doc["journeys"]
    assert journey["retention"]["treatment"]["kept_rate"] == pytest.approx(2 / 3)
    assert journey["retention"]["holdout"]["mrr_after"] == 140.0
    assert journey["retention"]["kept_low"] == pytest.approx(-0.44578, abs=1e-4)
    html = page.read_text()
    assert "Did it keep customers? Accounts 90 days after entry" in html
    assert "Retention: no clear difference: +16.7 pts [-44.6, +65.5]" in html


def test_the_retention_window_comes_from_config(world: World) -> None:
    seed(world.db)
    world.configure('[reports]\nretention_window = "30d"\n')

    doc = json.loads(world.cli("report", *HAND_RANGE, "--format", "json").stdout)

    kept = doc["journeys"][0]["retention"]
    assert kept["window_days"] == 30
    # 30 days after entry t1, t2 (churns at day 40), t3 still pay, and t5 (day 50 + 30 < 100: judged now,
    # not pending); h1 churned at day 20, h2 pays
    assert (kept["treatment"]["pending"], kept["treatment"]["still_paying"]) == (0, 4)
    assert kept["holdout"]["still_paying"] == 1


def test_the_digest_judges_each_journey_on_every_entry_so_far_and_has_room_for_the_months_line(
    world: World,
) -> None:
    world.journey(JOURNEY.replace("id: b2b-renewal", "id: j"))
    seed(world.db)
    world.configure(
        '[reports]\ndigest_recipients = ["ana@chartwell.example"]\nmin_sample = 2\n'
        '[server]\npublic_url = "https://engage.example.com"\n'
    )

    assert digest.send_digest(world.settings, world.db, ManualClock(at(100)), force=True) == 1

    [path] = (world.root / "outbox").glob("*.eml")
    text = message_from_bytes(path.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    # every entry so far: t9 (day -10, 999 then and at day 80) joins t1..t5: 3 of 4 still pay, against 1 of 2
    interval = stats.newcombe(3, 4, 1, 2)
    assert (
        f"retention (90d after entry, every entry so far): no clear difference: +25.0 pts "
        f"[{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"
    ) in text
    report = build.for_settings(world.settings, world.db, Period(at(93), at(100)), at(100))
    composed = digest.compose(report, world.settings, "ana@chartwell.example", "2026-W24", "March: GRR 97.0%")
    assert composed.text.splitlines()[2] == "March: GRR 97.0%" and "March: GRR 97.0%" in composed.html


def test_sqlite_looks_up_each_entrys_mrr_twice_not_once_per_sum(tmp_path: Path) -> None:
    db = database.Database(url_for("sqlite", tmp_path))
    db.create_all()
    seed(db)
    with db.begin() as conn:
        stmt = journey_retention.statement(conn, HAND_PERIOD, ["j"], WINDOW, at(100))
        compiled = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = [row[3] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]

    lookups = [step for step in plan if step.startswith("SEARCH revenue USING INDEX")]
    assert len(lookups) == 2, (
        plan
    )  # MRR at entry and at entry + window, each through (account_id, effective_at)


def test_the_net_mrr_interval_covers_the_true_difference_about_95_times_in_100() -> None:
    rng = random.Random(11)
    plans = (50.0, 100.0, 200.0, 400.0)

    def group(n: int, keep: float, grow: float) -> stats.Sums:
        x = [rng.choice(plans) for _ in range(n)]
        y = [v * grow * rng.uniform(0.8, 1.2) if rng.random() < keep else 0.0 for v in x]
        return stats.Sums(
            n,
            sum(x),
            sum(y),
            sum(v * v for v in x),
            sum(v * v for v in y),
            sum(a * b for a, b in zip(x, y, strict=True)),
        )

    truth = 0.9 * 1.1 - 0.7 * 1.0  # E[y]/E[x] per group: keep * grow (the uniform factor averages 1)
    runs = 2000
    covered = 0
    for _ in range(runs):
        interval = stats.ratio_difference(group(200, 0.9, 1.1), group(60, 0.7, 1.0))
        assert interval is not None
        covered += interval.low <= truth <= interval.high
    assert 0.92 <= covered / runs <= 0.97  # 0.935 with this seed: the linearisation runs a little narrow
