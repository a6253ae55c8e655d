"""The rules every send obeys, through real ticks: the weekly cap with priorities, send windows across time
zones and DST, catch-up after downtime, suppression checked at send time, and the sending lease."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from engine_world import NOW, World
from sqlalchemy import Connection, update

from engagement.delivery import dispatch, windows
from engagement.evaluation import tick
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

en, d = schema.enrollments, schema.deliveries
DAY, WEEK, HOUR = timedelta(days=1), timedelta(days=7), timedelta(hours=1)


def one_email(
    world: World, journey_id: str, *, priority: int = 0, event: str = "signed_up", **extra: str
) -> None:
    """A journey that sends one email when `event` happens."""
    lines = "".join(f"{key}: {value}\n" for key, value in extra.items())
    world.journey(
        f"id: {journey_id}\nname: {journey_id}\nstatus: active\npriority: {priority}\n"
        f"trigger: {{event: {event}}}\n{lines}steps:\n"
        f"  - id: mail\n    email: {{template: onboarding/welcome, subject: '{journey_id}'}}\n"
    )


def happened(world: World, contact_id: str, name: str, at: datetime) -> None:
    world.events({"contact_id": contact_id, "name": name, "timestamp": at})


def sends(world: World) -> list[tuple[str, datetime | None]]:
    """(journey, sent_at) of every sent email, in sending order."""
    rows = world.rows(d, d.c.status == "sent", d.c.channel == "email")
    return [(r["journey_id"], r["sent_at"]) for r in sorted(rows, key=lambda r: (r["sent_at"], r["id"]))]


def statuses(world: World) -> dict[str, str]:
    return {f"{r['journey_id']}/{r['contact_id']}/{r['step_id']}": r["status"] for r in world.rows(d)}


def ticks(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    found, at = [], start
    while at <= end:
        found.append(at)
        at += step
    return found


# --- the weekly cap -------------------------------------------------------------------------------


def test_with_a_cap_of_one_the_held_emails_go_out_a_week_apart_in_priority_order(world: World) -> None:
    world.configure("[limits]\nemails_per_contact_per_week = 1\n")
    for journey_id, priority in (("low", 1), ("high", 5), ("mid", 3)):
        one_email(world, journey_id, priority=priority)
    world.people(1)
    happened(world, "c000", "signed_up", NOW)

    first = world.tick(NOW)

    assert first.dispatched.sent == 1 and first.dispatched.held == 2
    assert [m.subject for m in world.email.sent] == ["high"]
    assert first.dispatched.sent_ids == [
        r["id"] for r in world.rows(d, d.c.status == "sent")
    ]  # held: not in it
    held = world.rows(d, d.c.status == "queued")
    assert {r["journey_id"]: r["due_at"] for r in held} == {"low": NOW + WEEK, "mid": NOW + WEEK}
    assert {r["status_reason"] for r in held} == {"held: weekly email cap reached"}
    assert {r["hold_code"] for r in held} == {"weekly_cap"}

    for at in ticks(NOW + DAY, NOW + 3 * WEEK, DAY):
        world.tick(at)

    assert [m.subject for m in world.email.sent] == ["high", "mid", "low"]
    assert sends(world) == [("high", NOW), ("mid", NOW + WEEK), ("low", NOW + 2 * WEEK)]
    times = [at for _, at in sends(world)]
    assert all(later - earlier >= WEEK for earlier, later in itertools.pairwise(times))
    assert world.count(d, d.c.status != "sent") == 0  # none lost, none skipped as late


def test_with_a_cap_of_three_a_fourth_email_that_day_waits_until_a_week_after_the_first(world: World) -> None:
    world.configure("[limits]\nemails_per_contact_per_week = 3\n")
    for n in range(4):
        one_email(world, f"j{n}", event=f"e{n}")
    world.people(1)
    moments = [NOW + n * 2 * HOUR for n in range(4)]  # 10:00, 12:00, 14:00, 16:00 the same Monday
    for n, at in enumerate(moments):
        happened(world, "c000", f"e{n}", at)
        world.tick(at)

    assert [j for j, _ in sends(world)] == ["j0", "j1", "j2"]
    [fourth] = world.rows(d, d.c.journey_id == "j3")
    assert (fourth["status"], fourth["due_at"]) == ("queued", NOW + WEEK)

    world.tick(NOW + WEEK - timedelta(minutes=1))
    assert len(world.email.sent) == 3
    world.tick(NOW + WEEK)
    assert sends(world)[-1] == ("j3", NOW + WEEK)


def test_in_app_nudges_are_not_counted_against_the_email_cap(world: World) -> None:
    world.configure("[limits]\nemails_per_contact_per_week = 1\n")
    one_email(world, "mail-a", priority=2)
    one_email(world, "mail-b", priority=1)
    world.journey("""
        id: nudges
        name: Nudges
        status: active
        trigger: {event: signed_up}
        steps:
          - id: first
            in_app: {title: One}
          - id: second
            in_app: {title: Two}
    """)
    world.people(1)
    happened(world, "c000", "signed_up", NOW)

    world.tick(NOW)

    assert statuses(world) == {
        "mail-a/c000/mail": "sent",
        "mail-b/c000/mail": "queued",
        "nudges/c000/first": "sent",
        "nudges/c000/second": "sent",
    }
    assert world.count(schema.nudges) == 2


# --- send windows ---------------------------------------------------------------------------------

OFFICE_HOURS = {"send_window": "{days: mon-fri, hours: '09:00-17:00', timezone: contact}"}
OFFICE = windows.Window(frozenset(range(5)), 9 * 60, 17 * 60)


def test_a_message_outside_the_contacts_window_goes_out_at_the_first_tick_of_their_local_nine_oclock(
    world: World,
) -> None:
    one_email(world, "office", **OFFICE_HOURS)
    world.people(1, prefix="ny", timezone="America/New_York")
    world.people(1, prefix="tk", timezone="Asia/Tokyo")
    for contact_id in ("ny000", "tk000"):
        happened(world, contact_id, "signed_up", NOW)  # Monday 05:00 in New York, 19:00 in Tokyo
    window = OFFICE

    first = world.tick(NOW)
    assert first.dispatched.sent == 0 and first.dispatched.held == 2
    assert world.email.sent == []

    for at in ticks(NOW + HOUR, NOW + 2 * DAY, HOUR):
        world.tick(at)

    sent_at = {r["contact_id"]: r["sent_at"] for r in world.rows(d)}
    assert sent_at == {
        "ny000": datetime(2026, 3, 2, 14, 0, tzinfo=UTC),  # Monday 09:00 EST
        "tk000": datetime(2026, 3, 3, 0, 0, tzinfo=UTC),  # Tuesday 09:00 JST
    }
    for contact_id, zone in (("ny000", "America/New_York"), ("tk000", "Asia/Tokyo")):
        local = sent_at[contact_id].astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (9, 0)
        assert windows.is_open(window, sent_at[contact_id], ZoneInfo(zone))
    assert world.count(d, d.c.status != "sent") == 0


def test_a_message_held_over_the_spring_forward_weekend_goes_out_monday_nine_oclock_daylight_time(
    world: World,
) -> None:
    one_email(world, "office", **OFFICE_HOURS)
    world.people(1, timezone="America/New_York")
    friday_evening = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)  # Friday 18:00 EST; clocks go forward on Sunday
    happened(world, "c000", "signed_up", friday_evening)

    for at in ticks(friday_evening, friday_evening + 3 * DAY, HOUR):
        world.tick(at)

    [row] = world.rows(d)
    assert row["status"] == "sent"
    assert row["sent_at"] == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    local = row["sent_at"].astimezone(ZoneInfo("America/New_York"))
    assert (local.weekday(), local.hour, local.tzname()) == (0, 9, "EDT")


@pytest.mark.parametrize("zone_setting", ["account", "Asia/Tokyo"])
def test_a_window_can_be_judged_in_the_accounts_zone_or_a_named_one(world: World, zone_setting: str) -> None:
    window = f"{{days: mon-fri, hours: '09:00-17:00', timezone: {zone_setting}}}"
    one_email(world, "office", send_window=window)
    world.people(1, timezone="America/New_York")  # the contact's own zone is not the one that counts
    world.accounts(
        {"id": "acme", "name": "Acme", "plan": "pro", "mrr": 99, "traits": {"timezone": "Asia/Tokyo"}}
    )
    happened(world, "c000", "signed_up", NOW)

    for at in ticks(NOW, NOW + DAY, HOUR):
        world.tick(at)

    [row] = world.rows(d)
    assert row["sent_at"] == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # Tuesday 09:00 in Tokyo


def test_a_window_is_never_left_for_any_of_many_contacts_across_zones_and_none_is_lost(world: World) -> None:
    zones = ["America/New_York", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney"]
    one_email(world, "office", **OFFICE_HOURS)
    for n, zone in enumerate(zones):
        world.people(1, prefix=f"z{n}-", timezone=zone)
        happened(world, f"z{n}-000", "signed_up", NOW)
    window = OFFICE

    for at in ticks(NOW, NOW + 3 * DAY, timedelta(minutes=30)):
        world.tick(at)

    rows = world.rows(d)
    assert len(rows) == len(zones)
    assert {r["status"] for r in rows} == {"sent"}
    for n, zone in enumerate(zones):
        [row] = [r for r in rows if r["contact_id"] == f"z{n}-000"]
        assert windows.is_open(window, row["sent_at"], ZoneInfo(zone)), (zone, row["sent_at"])
        assert row["sent_at"] - windows.next_open(window, NOW, ZoneInfo(zone)) < timedelta(minutes=30)


# --- catch-up after downtime ----------------------------------------------------------------------

WAIT_THEN_MAIL = """
id: later
name: Later
status: active
trigger: {event: signed_up}
steps:
  - id: first
    email: {template: onboarding/welcome, subject: First}
  - wait: 3d
  - id: second
    email: {template: onboarding/stalled, subject: Second}
  - id: third
    in_app: {title: Still there}
"""


def test_a_message_whose_moment_passed_longer_ago_than_max_lateness_is_skipped_and_the_journey_moves_on(
    world: World,
) -> None:
    world.journey(WAIT_THEN_MAIL)
    world.people(1)
    happened(world, "c000", "signed_up", NOW)

    world.tick(NOW)
    report = world.tick(NOW + 8 * DAY)  # down for a week: the wait ended 5 days ago

    assert [m.subject for m in world.email.sent] == ["First"]
    assert report.dispatched.skipped_late == 2
    rows = {r["step_id"]: r for r in world.rows(d)}
    assert rows["second"]["status"] == "skipped_late"
    assert rows["second"]["due_at"] == NOW + 3 * DAY
    assert rows["second"]["status_reason"].startswith(f"due {(NOW + 3 * DAY).isoformat()}")
    assert rows["third"]["status"] == "skipped_late"
    [enrollment] = world.rows(en)
    assert (enrollment["state"], enrollment["outcome"]) == ("ended", "completed")


def test_a_message_just_inside_max_lateness_is_sent(world: World) -> None:
    world.journey(WAIT_THEN_MAIL)
    world.people(1)
    happened(world, "c000", "signed_up", NOW)

    world.tick(NOW)
    world.tick(NOW + 4 * DAY - timedelta(minutes=1))  # the wait ended 23h59m ago; max_lateness is 1d

    assert [m.subject for m in world.email.sent] == ["First", "Second"]
    assert {r["step_id"]: r["status"] for r in world.rows(d)} == {
        "first": "sent",
        "second": "sent",
        "third": "sent",
    }


def test_the_journeys_own_max_lateness_overrides_the_schedulers(world: World) -> None:
    world.journey(WAIT_THEN_MAIL.replace("status: active", "status: active\nmax_lateness: 6h"))
    world.people(1)
    happened(world, "c000", "signed_up", NOW)

    world.tick(NOW)
    world.tick(NOW + 3 * DAY + 7 * HOUR)

    assert [m.subject for m in world.email.sent] == ["First"]
    assert {r["step_id"]: r["status"] for r in world.rows(d)}["second"] == "skipped_late"


RENEWAL_SERIES = """
id: renewal-series
name: Renewal series
status: active
trigger: {event: renewal_notice}
max_lateness: 36h
steps:
  - id: day-0
    email: {template: renewal/reminder, subject: Day 0}
  - wait: 1d
  - id: day-1
    email: {template: renewal/reminder, subject: Day 1}
  - wait: 1d
  - id: day-2
    email: {template: renewal/reminder, subject: Day 2}
  - wait: 7d
  - id: day-9
    email: {template: renewal/reminder, subject: Day 9}
"""


def test_after_an_outage_a_date_relative_series_sends_only_its_latest_applicable_step(world: World) -> None:
    world.journey(RENEWAL_SERIES)
    world.people(1)
    happened(world, "c000", "renewal_notice", NOW)

    world.tick(NOW)
    world.tick(NOW + 3 * DAY)  # down for three days: day 1 is two days old, day 2 one day old

    assert [m.subject for m in world.email.sent] == ["Day 0", "Day 2"]
    assert {r["step_id"]: r["status"] for r in world.rows(d)} == {
        "day-0": "sent",
        "day-1": "skipped_late",
        "day-2": "sent",
    }
    # the rest of the series keeps its dates: day 9 is due nine days after day 0, not seven after the outage
    [enrollment] = world.rows(en)
    assert enrollment["next_action_at"] == NOW + 9 * DAY
    world.tick(NOW + 9 * DAY)
    assert [m.subject for m in world.email.sent][-1] == "Day 9"


PAUSABLE = """
id: drip
name: Drip
status: {status}
trigger: {{event: signed_up}}
steps:
  - id: d0
    email: {{template: onboarding/welcome, subject: D0}}
  - wait: 1d
  - id: d1
    email: {{template: onboarding/stalled, subject: D1}}
  - wait: 1d
  - id: d2
    email: {{template: adoption/first-report-tips, subject: D2}}
  - wait: 1d
  - id: d3
    email: {{template: adoption/we-miss-you, subject: D3}}
  - wait: 10d
  - id: d13
    email: {{template: adoption/we-miss-you, subject: D13}}
"""


def test_un_pausing_a_journey_after_five_days_skips_the_stale_steps_instead_of_flooding(world: World) -> None:
    world.configure("[limits]\nemails_per_contact_per_week = 10\n")
    world.journey(PAUSABLE.format(status="active"))
    people = world.people(3)
    for contact_id in people:
        happened(world, contact_id, "signed_up", NOW)
    world.tick(NOW)
    world.journey(PAUSABLE.format(status="paused"))
    for at in ticks(NOW + 12 * HOUR, NOW + 5 * DAY + 12 * HOUR, 12 * HOUR):
        world.tick(at)
    assert [m.subject for m in world.email.sent] == ["D0"] * 3

    world.journey(PAUSABLE.format(status="active"))
    world.tick(NOW + 5 * DAY + 13 * HOUR)

    assert [m.subject for m in world.email.sent] == ["D0"] * 3  # nothing stale went out
    late = world.rows(d, d.c.status == "skipped_late")
    assert sorted({r["step_id"] for r in late}) == ["d1", "d2", "d3"]
    assert len(late) == 9
    world.tick(NOW + 13 * DAY)
    assert [m.subject for m in world.email.sent] == ["D0"] * 3 + ["D13"] * 3


# --- suppression and erasure, checked when sending -------------------------------------------------


def test_a_contact_suppressed_while_their_message_waits_for_its_window_is_never_sent_it(world: World) -> None:
    one_email(world, "office", **OFFICE_HOURS)
    world.people(2, timezone="America/New_York")
    for contact_id in ("c000", "c001"):
        happened(world, contact_id, "signed_up", NOW)
    world.tick(NOW)  # 05:00 in New York: both held
    assert {r["status"] for r in world.rows(d)} == {"queued"}

    world.suppress("c000@example.com")
    report = world.tick(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))

    assert report.dispatched.suppressed == 1
    assert [m.to for m in world.email.sent] == ["c001@example.com"]
    assert statuses(world) == {"office/c000/mail": "suppressed", "office/c001/mail": "sent"}
    world.tick(datetime(2026, 3, 3, 14, 0, tzinfo=UTC))
    assert [m.to for m in world.email.sent] == ["c001@example.com"]


def test_a_contact_erased_while_their_message_waits_is_dropped(world: World) -> None:
    one_email(world, "office", **OFFICE_HOURS)
    world.journey("""
        id: nudge
        name: Nudge
        status: active
        trigger: {event: signed_up}
        send_window: {days: mon-fri, hours: '09:00-17:00', timezone: contact}
        steps:
          - id: hello
            in_app: {title: Hello}
    """)
    world.people(2, timezone="America/New_York")
    for contact_id in ("c000", "c001"):
        happened(world, contact_id, "signed_up", NOW)
    world.tick(NOW)

    world.erase("c000")
    world.tick(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))

    assert [m.to for m in world.email.sent] == ["c001@example.com"]
    assert statuses(world) == {
        "office/c000/mail": "dropped",
        "office/c001/mail": "sent",
        "nudge/c000/hello": "dropped",
        "nudge/c001/hello": "sent",
    }
    assert (
        world.rows(d, d.c.contact_id == "c000", d.c.step_id == "mail")[0]["status_reason"] == "contact erased"
    )
    assert world.count(schema.nudges, schema.nudges.c.contact_id == "c000") == 0


# --- the sending lease ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"), [(timedelta(minutes=11), "in_doubt"), (timedelta(minutes=9), "sending")]
)
def test_a_delivery_left_sending_becomes_in_doubt_only_after_the_lease_and_is_never_sent(
    world: World, age: timedelta, expected: str
) -> None:
    one_email(world, "office", **OFFICE_HOURS)
    world.people(1, timezone="America/New_York")
    happened(world, "c000", "signed_up", NOW)
    world.tick(NOW)
    opens = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    with world.db.begin() as conn:  # a worker claimed it at 13:xx and died before the provider answered
        conn.execute(update(d).values(status="sending", updated_at=opens - age, due_at=opens - age))

    report = world.tick(opens)

    [row] = world.rows(d)
    assert row["status"] == expected
    assert report.dispatched.in_doubt == (expected == "in_doubt")
    if expected == "in_doubt":
        assert row["status_reason"].startswith("no confirmation within the sending lease")
    assert world.email.sent == []
    for at in ticks(opens + HOUR, opens + DAY, HOUR):
        world.tick(at)
    assert world.email.sent == []
    assert world.rows(d)[0]["status"] in ("in_doubt", "sending")


# --- claiming -------------------------------------------------------------------------------------


def test_a_full_batch_of_messages_that_cannot_go_does_not_hold_up_the_ones_behind_it(world: World) -> None:
    world.configure("[limits]\nin_flight = 2\n")
    one_email(world, "urgent", priority=5)
    one_email(world, "routine", event="logged_in")
    world.people(3)
    for contact_id in ("c000", "c001"):
        happened(world, contact_id, "signed_up", NOW)
        world.suppress(f"{contact_id}@example.com")
    happened(world, "c002", "logged_in", NOW)

    report = world.tick(NOW)

    assert report.dispatched.suppressed == 2
    assert [m.to for m in world.email.sent] == ["c002@example.com"]


def test_two_workers_judging_one_contacts_emails_at_once_still_keep_the_weekly_cap(world: World) -> None:
    if world.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: two workers never judge at once")
    world.configure("[limits]\nemails_per_contact_per_week = 1\nin_flight = 1\n")
    one_email(world, "first", priority=2)
    one_email(world, "second", priority=1)
    world.people(1)
    happened(world, "c000", "signed_up", NOW)
    engine = world.engine
    tick.run(world.db, world.settings, engine.catalog, engine.renderer, engine.ports, NOW, send=False)
    assert world.count(d, d.c.status == "queued") == 2

    def claim(conn: Connection) -> list[Any]:
        """One worker's claim of its next batch (one delivery: `in_flight = 1`)."""
        args = (world.settings, engine.catalog, ["first", "second"], NOW, dispatch.Dispatched())
        return dispatch._claim(world.db, conn, *args, emails=True, claimed_at=NOW)[1]

    other: list[list[Any]] = []
    with world.db.begin() as conn:
        [mine] = claim(conn)  # worker A claims "first" and has not committed yet
        worker_b = threading.Thread(target=lambda: other.append(claim_alone(world, claim)))
        worker_b.start()
        worker_b.join(0.5)
        assert worker_b.is_alive()  # B, holding "second" (SKIP LOCKED), waits for A's turn on c000
    worker_b.join(10)

    assert mine.journey_id == "first" and other == [[]]  # B saw A's claim and held its email
    [held] = world.rows(d, d.c.journey_id == "second")
    assert (held["status"], held["due_at"], held["status_reason"]) == (
        "queued",
        NOW + WEEK,
        "held: weekly email cap reached",
    )


def claim_alone(world: World, claim: Callable[[Connection], list[Any]]) -> list[Any]:
    with world.db.begin() as conn:
        return claim(conn)
