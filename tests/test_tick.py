"""What one tick does: enroll, end, advance and send, exactly once, to the right people."""

from __future__ import annotations

from datetime import timedelta

import pytest
from backends import Analyses
from engine_world import NOW, World
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from engagement.evaluation import holdout, tick
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

en, d = schema.enrollments, schema.deliveries

WELCOME = """
id: welcome
name: Welcome
status: {status}
trigger: {{event: signed_up}}
re_entry: {re_entry}
steps:
  - id: hello
    email: {{template: onboarding/welcome, subject: "Welcome aboard, {{{{ contact.first_name }}}}"}}
"""


def welcome(world: World, *, status: str = "active", re_entry: str = "never") -> None:
    world.journey(WELCOME.format(status=status, re_entry=re_entry))


def signed_up(world: World, *contact_ids: str, at: timedelta = timedelta(hours=-1)) -> None:
    world.events(*({"contact_id": cid, "name": "signed_up", "timestamp": NOW + at} for cid in contact_ids))


def recipients(world: World) -> list[str]:
    return sorted(message.to for message in world.email.sent)


def outcomes(world: World) -> dict[str, str | None]:
    return {row["subject_id"]: row["outcome"] for row in world.rows(en)}


# --- exactly once -------------------------------------------------------------------------------


def test_a_second_tick_at_the_same_instant_sends_nothing_more(world: World) -> None:
    welcome(world)
    people = world.people(3)
    signed_up(world, *people)

    first = world.tick(NOW)
    second = world.tick(NOW)

    assert first.total("enrolled") == 3 and first.dispatched.sent == 3
    assert second.total("enrolled") == 0 and second.dispatched.sent == 0
    assert recipients(world) == [f"{p}@example.com" for p in people]
    assert world.count(d) == 3
    assert world.count(en) == 3


def test_the_cli_tick_run_twice_at_the_same_instant_writes_each_eml_file_once(world: World) -> None:
    welcome(world)
    signed_up(world, *world.people(2))
    outbox = world.root / "outbox"

    first = world.cli("tick", "--now", NOW.isoformat())
    after_first = sorted(outbox.glob("*.eml"))
    second = world.cli("tick", "--now", NOW.isoformat())

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert len(after_first) == 2
    assert sorted(outbox.glob("*.eml")) == after_first
    assert world.count(d) == 2
    assert world.count(d, d.c.status == "sent") == 2


def test_the_database_refuses_a_second_delivery_for_the_same_enrollment_step_and_recipient(
    world: World,
) -> None:
    welcome(world)
    signed_up(world, *world.people(1))
    world.tick(NOW)
    [row] = world.rows(d)

    with pytest.raises(IntegrityError), world.db.begin() as conn:
        conn.execute(insert(d).values({**row, "id": "another-id"}))
    assert world.count(d) == 1


# --- who receives -------------------------------------------------------------------------------


def test_a_suppressed_address_gets_no_email_while_the_others_do(world: World) -> None:
    welcome(world)
    people = world.people(3)
    signed_up(world, *people)
    world.suppress("  C001@Example.COM ")  # compared normalised

    report = world.tick(NOW)

    assert recipients(world) == ["c000@example.com", "c002@example.com"]
    assert report.dispatched.suppressed == 1
    statuses = {row["contact_id"]: row["status"] for row in world.rows(d)}
    assert statuses == {"c000": "sent", "c001": "suppressed", "c002": "sent"}


@pytest.mark.parametrize("status", ["draft", "paused"])
def test_draft_and_paused_journeys_enroll_nobody_and_send_nothing(world: World, status: str) -> None:
    welcome(world, status=status)
    signed_up(world, *world.people(3))

    world.tick(NOW)
    world.tick(NOW + timedelta(hours=1))

    assert world.email.sent == []
    assert world.count(en) == 0
    assert world.count(d) == 0


def test_a_paused_journey_holds_its_enrollments_where_they_are_but_still_ends_them_on_goal(
    world: World,
) -> None:
    text = """
        id: two-mails
        name: Two mails
        status: {status}
        trigger: {{event: signed_up}}
        goal: {{milestone: activated}}
        steps:
          - id: first
            email: {{template: onboarding/welcome, subject: First}}
          - wait: 1d
          - id: second
            email: {{template: onboarding/stalled, subject: Second}}
    """
    world.journey(text.format(status="active"))
    people = world.people(2)
    signed_up(world, *people)
    world.tick(NOW)
    world.journey(text.format(status="paused"))
    world.events({"contact_id": "c000", "name": "activated", "timestamp": NOW + timedelta(days=1)})

    world.tick(NOW + timedelta(days=2))

    assert [m.subject for m in world.email.sent] == ["First", "First"]
    assert outcomes(world) == {"c000": "converted", "c001": None}
    [held] = world.rows(en, en.c.subject_id == "c001")
    assert held["state"] == "active"


# --- how enrollments end ------------------------------------------------------------------------


def test_goal_converts_exit_exits_and_the_last_step_completes(world: World) -> None:
    world.journey("""
        id: outcomes
        name: Outcomes
        status: active
        trigger: {event: signed_up}
        goal: {milestone: activated}
        exit: {contact.role: churned}
        steps:
          - id: first
            email: {template: onboarding/welcome, subject: First}
          - wait: 1d
          - id: second
            email: {template: onboarding/stalled, subject: Second}
    """)
    world.people(3, role="member")
    signed_up(world, "c000", "c001", "c002")
    world.tick(NOW)
    world.events({"contact_id": "c000", "name": "activated", "timestamp": NOW + timedelta(hours=5)})
    world.contacts({"id": "c001", "account_id": "acme", "role": "churned"})
    later = NOW + timedelta(days=1, hours=1)

    report = world.tick(later)

    assert outcomes(world) == {"c000": "converted", "c001": "exited", "c002": "completed"}
    assert {row["ended_at"] for row in world.rows(en)} == {later}
    assert (report.total("converted"), report.total("exited"), report.total("completed")) == (1, 1, 1)
    assert [(m.to, m.subject) for m in world.email.sent][3:] == [("c002@example.com", "Second")]


def test_people_who_already_meet_the_goal_or_the_exit_are_not_enrolled(world: World) -> None:
    world.journey("""
        id: outcomes
        name: Outcomes
        status: active
        trigger: {event: signed_up}
        goal: {milestone: activated}
        exit: {contact.role: churned}
        steps:
          - id: first
            email: {template: onboarding/welcome, subject: First}
    """)
    world.people(3, role="member")
    world.contacts({"id": "c001", "account_id": "acme", "role": "churned"})
    world.events({"contact_id": "c000", "name": "activated", "timestamp": NOW - timedelta(days=3)})
    signed_up(world, "c000", "c001", "c002")

    world.tick(NOW)

    assert outcomes(world) == {"c002": "completed"}
    assert recipients(world) == ["c002@example.com"]


# --- holdout ------------------------------------------------------------------------------------


def test_the_holdout_takes_about_its_share_gets_nothing_and_matches_the_hash(world: World) -> None:
    world.journey("""
        id: holdout-check
        name: Holdout check
        status: active
        trigger: {event: signed_up}
        holdout: 25%
        steps:
          - id: hello
            in_app: {title: "Hi {{ contact.first_name }}"}
    """)
    people = world.people(400)
    signed_up(world, *people)

    world.tick(NOW)

    rows = world.rows(en)
    held = {row["subject_id"] for row in rows if row["holdout"]}
    assert len(rows) == 400
    assert 0.19 <= len(held) / 400 <= 0.31
    assert held == {p for p in people if holdout.in_holdout("holdout-check", p, 0.25)}
    assert {row["outcome"] for row in rows if row["holdout"]} == {"holdout"}
    assert {row["outcome"] for row in rows if not row["holdout"]} == {"completed"}
    delivered = {row["contact_id"] for row in world.rows(d)}
    assert delivered == set(people) - held


def test_a_holdout_member_who_reaches_the_goal_converts_without_receiving_anything(world: World) -> None:
    world.journey("""
        id: all-held
        name: All held
        status: active
        trigger: {event: signed_up}
        goal: {milestone: activated}
        holdout: 100%
        steps:
          - id: first
            email: {template: onboarding/welcome, subject: First}
          - wait: 2d
          - id: second
            email: {template: onboarding/stalled, subject: Second}
    """)
    signed_up(world, *world.people(2))
    world.tick(NOW)
    world.events({"contact_id": "c000", "name": "activated", "timestamp": NOW + timedelta(days=1)})

    world.tick(NOW + timedelta(days=3))

    assert outcomes(world) == {"c000": "converted", "c001": "holdout"}
    assert world.count(d) == 0
    assert world.email.sent == []


# --- re-entry -----------------------------------------------------------------------------------


def test_re_entry_never_enrolls_a_person_only_once(world: World) -> None:
    welcome(world, re_entry="never")
    world.people(1)
    signed_up(world, "c000")
    world.tick(NOW)
    signed_up(world, "c000", at=timedelta(days=2))

    world.tick(NOW + timedelta(days=2, hours=1))

    assert world.count(en) == 1
    assert len(world.email.sent) == 1


def test_re_entry_always_enrolls_again_on_a_new_event_but_not_on_the_one_already_used(world: World) -> None:
    welcome(world, re_entry="always")
    world.people(1)
    signed_up(world, "c000")
    world.tick(NOW)

    world.tick(NOW + timedelta(hours=1))  # the same event is still within the lookback
    assert world.count(en) == 1

    signed_up(world, "c000", at=timedelta(hours=2))
    world.tick(NOW + timedelta(hours=3))
    assert world.count(en) == 2
    assert len(world.email.sent) == 2


def test_re_entry_after_a_duration_counts_from_the_last_entry(world: World) -> None:
    welcome(world, re_entry="{after: 7d}")
    world.people(1)
    signed_up(world, "c000")
    world.tick(NOW)

    signed_up(world, "c000", at=timedelta(days=3))
    world.tick(NOW + timedelta(days=3, hours=1))
    assert world.count(en) == 1

    signed_up(world, "c000", at=timedelta(days=8))
    world.tick(NOW + timedelta(days=8, hours=1))
    assert world.count(en) == 2
    assert len(world.email.sent) == 2


def test_an_event_during_an_earlier_enrollment_does_not_enroll_again_once_it_ends(world: World) -> None:
    world.journey("""
        id: long-memory
        name: Long memory
        status: active
        trigger: {event: signed_up}
        lookback: 30d
        re_entry: {after: 1d}
        steps:
          - id: first
            in_app: {title: First}
          - wait: 5d
          - id: second
            in_app: {title: Second}
    """)
    world.people(1)
    signed_up(world, "c000")
    world.tick(NOW)
    signed_up(world, "c000", at=timedelta(days=2))  # while the first enrollment runs

    for days in (2, 5, 6):
        world.tick(NOW + timedelta(days=days, hours=1))
    assert world.count(en) == 1
    assert outcomes(world) == {"c000": "completed"}

    signed_up(world, "c000", at=timedelta(days=7))
    world.tick(NOW + timedelta(days=7, hours=1))
    assert world.count(en) == 2


@pytest.mark.parametrize(("re_entry", "expected"), [("never", 1), ("{after: 7d}", 2), ("always", 4)])
def test_re_entry_decides_how_often_a_condition_trigger_enrolls_a_person(
    world: World, re_entry: str, expected: int
) -> None:
    world.journey(f"""
        id: admins
        name: Admins
        status: active
        trigger: {{condition: {{contact.role: admin}}}}
        re_entry: {re_entry}
        steps:
          - id: hello
            in_app: {{title: Hello}}
    """)
    world.people(1, role="admin")

    for days in (0, 1, 6, 8):  # entry at day 0; 7 days later is day 7
        world.tick(NOW + timedelta(days=days))

    assert world.count(en) == expected
    assert world.count(d) == expected


# --- lookback -----------------------------------------------------------------------------------


def test_an_event_older_than_the_lookback_enrolls_nobody(world: World) -> None:
    welcome(world)
    world.people(2)
    signed_up(world, "c000", at=timedelta(hours=-25))
    signed_up(world, "c001", at=timedelta(hours=-23))

    world.tick(NOW)

    assert outcomes(world) == {"c001": "completed"}


def test_a_journey_lookback_shorter_than_the_default_is_respected(world: World) -> None:
    world.journey("""
        id: short
        name: Short lookback
        status: active
        trigger: {milestone: first_login}
        lookback: 2h
        steps:
          - id: hello
            in_app: {title: Hello}
    """)
    world.people(2)
    world.events(
        {"contact_id": "c000", "name": "first_login", "timestamp": NOW - timedelta(hours=3)},
        {"contact_id": "c001", "name": "first_login", "timestamp": NOW - timedelta(hours=1)},
    )

    world.tick(NOW)

    assert outcomes(world) == {"c001": "completed"}


def test_an_event_in_the_future_enrolls_nobody_until_its_time(world: World) -> None:
    welcome(world)
    world.people(1)
    signed_up(world, "c000", at=timedelta(hours=2))

    world.tick(NOW)
    assert world.count(en) == 0

    world.tick(NOW + timedelta(hours=2))
    assert world.count(en) == 1
    assert recipients(world) == ["c000@example.com"]


def test_a_milestone_trigger_with_a_milestone_goal_enrolls_only_who_has_not_reached_the_goal(
    world: World,
) -> None:
    world.journey(
        """
        id: connected
        name: Connected, now build
        status: active
        trigger: {milestone: integration_connected}
        goal: {milestone: first_report_created}
        steps:
          - id: tip
            email: {template: onboarding/welcome, subject: Build a report}
        """
    )
    world.people(2)
    world.events(
        {"contact_id": "c000", "name": "integration_connected", "timestamp": NOW},
        {"contact_id": "c001", "name": "integration_connected", "timestamp": NOW},
        {"contact_id": "c001", "name": "first_report_created", "timestamp": NOW},
    )
    world.tick(NOW)
    assert [r["subject_id"] for r in world.rows(schema.enrollments)] == ["c000"]


def test_an_event_trigger_with_an_event_count_filter_counts_all_of_the_contacts_events(world: World) -> None:
    world.journey(
        """
        id: sharers
        name: Frequent sharers
        status: active
        trigger: {event: report_shared}
        filter: {event_count: {event: report_shared, within: 7d, gte: 2}}
        steps:
          - id: thanks
            email: {template: onboarding/welcome, subject: Thanks}
        """
    )
    world.people(2)
    world.events(
        {"contact_id": "c000", "name": "report_shared", "timestamp": NOW - timedelta(days=2)},
        {"contact_id": "c000", "name": "report_shared", "timestamp": NOW},
        {"contact_id": "c001", "name": "report_shared", "timestamp": NOW},
    )
    world.tick(NOW)
    assert [r["subject_id"] for r in world.rows(schema.enrollments)] == ["c000"]


def test_a_stopping_engine_advances_no_further_batch_and_the_next_tick_does_the_work(world: World) -> None:
    welcome(world)
    world.people(3)
    for contact in ("c000", "c001", "c002"):
        world.events({"contact_id": contact, "name": "signed_up", "timestamp": NOW})
    world.engine.stop()  # SIGTERM arrived before this tick's first batch
    stopped = world.tick(NOW)
    assert stopped.total("enrolled") == 0 and world.count(schema.deliveries) == 0
    welcome(world)  # a fresh engine, as after the restart
    assert world.tick(NOW).total("queued") == 3


@pytest.mark.parametrize("written, refreshed", [(4, False), (6, True)])
def test_a_tick_that_writes_many_rows_refreshes_the_planner_statistics(
    world: World, monkeypatch: pytest.MonkeyPatch, written: int, refreshed: bool
) -> None:
    """On PostgreSQL; so the next tick does not plan against the statistics of an empty enrollment table."""
    if world.db.dialect != "postgresql":
        pytest.skip("SQLite keeps no statistics of its own")
    monkeypatch.setattr(tick, "STATISTICS_AFTER", 10)  # 4 enrolled + 4 queued < 10 ≤ 6 + 6
    welcome(world)
    world.people(written)
    signed_up(world, *(f"c{i:03d}" for i in range(written)))
    analyses = Analyses(world.db.engine, "enrollment")
    world.tick(NOW)
    assert analyses.happened(refreshed) == refreshed


# --- one journey failing ------------------------------------------------------------------------

SEATS = """
id: big-accounts
name: Big accounts
status: active
trigger: {condition: {contact.traits.seats: {gt: 3}}}
steps:
  - id: upsell
    email: {template: onboarding/welcome, subject: "More seats?"}
"""


def store_bad_seats(world: World, contact_id: str) -> None:
    """A trait the database cannot read as a number, written past the intake: on SQLite NaN (not JSON at
    all, so json_extract fails), on PostgreSQL a number beyond double precision."""
    value = "NaN" if world.db.dialect == "sqlite" else "1e400"
    with world.db.begin() as conn:
        conn.execute(
            text("UPDATE contact SET traits = :traits WHERE id = :id"),
            {"traits": f'{{"seats": {value}}}', "id": contact_id},
        )


def test_a_journey_that_fails_at_the_database_is_rolled_back_and_reported_while_the_others_run(
    world: World,
) -> None:
    world.journey(SEATS)
    welcome(world)
    people = world.people(3, traits={"seats": 5})
    signed_up(world, *people)
    store_bad_seats(world, "c000")

    report = world.tick(NOW)

    [(failed, why)] = report.failures.items()
    assert failed == "big-accounts"
    assert ("malformed JSON" if world.db.dialect == "sqlite" else "out of range") in why
    assert report.journeys["welcome"].enrolled == 3 and report.dispatched.sent == 3
    assert report.journeys["big-accounts"] == tick.JourneyCounts()
    assert world.count(en, en.c.journey_id == "big-accounts") == 0
    wm = schema.journey_watermarks
    assert world.count(wm, wm.c.journey_id == "big-accounts") == 0  # evaluated again next time, in full

    world.contacts({"id": "c000", "account_id": "acme", "email": "c000@example.com", "traits": {"seats": 4}})
    again = world.tick(NOW + timedelta(minutes=5))

    assert again.failures == {}
    assert again.journeys["big-accounts"].enrolled == 3


def test_the_cli_tick_prints_the_failed_journey_and_exits_1_after_running_the_rest(world: World) -> None:
    world.journey(SEATS)
    welcome(world)
    people = world.people(2, traits={"seats": 5})
    signed_up(world, *people)
    store_bad_seats(world, "c001")

    result = world.cli("tick", "--now", NOW.isoformat())

    assert result.exit_code == 1
    assert "journey big-accounts failed, its work this tick rolled back (the others ran):" in result.output
    assert "sent 2," in result.output
    assert "Traceback" not in result.output
