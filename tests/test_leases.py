"""Claim and lease mechanics shared by several workers: a lease starts when its batch is claimed, and a
provider's 429 pause is kept in the database, so every worker and every restart honours it."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine_world import NOW, World

from engagement.clock import ManualClock
from engagement.delivery import ledger, pause
from engagement.delivery.message import OutboundEmail, RateLimited
from engagement.delivery.recording import RecordingEmail
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")  # each `world` test runs on both (PostgreSQL when configured)

d = schema.deliveries
LEASE = timedelta(minutes=10)


def welcome(world: World, count: int) -> None:
    world.journey(
        "id: welcome\nname: Welcome\nstatus: active\ntrigger: {event: signed_up}\nsteps:\n"
        "  - id: hello\n    email: {template: onboarding/welcome, subject: Hello}\n"
    )
    for contact in world.people(count):
        world.events({"contact_id": contact, "name": "signed_up", "timestamp": NOW})


class SweepingMidSend(RecordingEmail):
    """Sends, and while the batch is in flight lets another worker's sweep run at `sweep_at`."""

    def __init__(self, world: World, sweep_at: datetime) -> None:
        super().__init__()
        self.world, self.sweep_at, self.swept = world, sweep_at, 0

    def send(self, message: OutboundEmail) -> str:
        with self.world.db.begin() as conn:
            self.swept += ledger.sweep(conn, self.sweep_at, LEASE)
        return super().send(message)


def test_a_batch_claimed_late_in_a_long_tick_is_not_taken_for_a_dead_workers_by_another_sweep(
    world: World,
) -> None:
    welcome(world, 3)
    # The tick decides at NOW, but its evaluation took 30 minutes: the batch is claimed at NOW + 30m.
    clock = ManualClock(NOW + timedelta(minutes=30))
    provider = SweepingMidSend(world, sweep_at=NOW + timedelta(minutes=35))
    report = world.engine_with(provider, clock).tick(NOW)

    assert provider.swept == 0, "a live batch was swept into in_doubt"
    assert report.dispatched.sent == 3 and len(provider.sent) == 3
    assert {r["status"] for r in world.rows(d)} == {"sent"}


def test_the_lease_still_expires_for_a_batch_whose_sender_died(world: World) -> None:
    welcome(world, 2)
    claimed_at = NOW + timedelta(minutes=30)
    provider = SweepingMidSend(world, sweep_at=claimed_at + LEASE + timedelta(seconds=1))
    world.engine_with(provider, ManualClock(claimed_at)).tick(NOW)
    assert provider.swept == 2  # past the lease, counted from the claim: in doubt (the real sender lives on)


class Limited(RecordingEmail):
    """Answers every send with a 429 until `until`."""

    name = "sendgrid"

    def __init__(self, until: datetime) -> None:
        super().__init__()
        self.until = until

    def send(self, message: OutboundEmail) -> str:
        raise RateLimited("429 Too Many Requests", self.until - NOW)  # engine and provider clocks agree here


class Counting(RecordingEmail):
    name = "sendgrid"


def test_a_429_in_one_worker_pauses_email_in_every_other_worker_and_after_a_restart(world: World) -> None:
    welcome(world, 4)
    reset = NOW + timedelta(minutes=5)
    limited = world.engine_with(Limited(reset)).tick(NOW)
    assert limited.dispatched.rate_limited == 1
    with world.db.begin() as conn:
        assert pause.until(conn, "sendgrid") == reset

    other = Counting()  # another worker, or this one restarted: nothing in memory
    world.engine_with(other, ManualClock(NOW + timedelta(minutes=1))).tick(NOW + timedelta(minutes=1))
    assert other.sent == [] and {r["status"] for r in world.rows(d)} == {"queued"}

    after = Counting()
    world.engine_with(after, ManualClock(reset)).tick(reset)
    assert len(after.sent) == 4 and {r["status"] for r in world.rows(d)} == {"sent"}


def test_an_earlier_pause_never_shortens_a_later_one(world: World) -> None:
    with world.db.begin() as conn:
        pause.hold(world.db, conn, "sendgrid", NOW + timedelta(minutes=10), NOW)
        pause.hold(world.db, conn, "sendgrid", NOW + timedelta(minutes=2), NOW)
        assert pause.until(conn, "sendgrid") == NOW + timedelta(minutes=10)
        pause.hold(world.db, conn, "sendgrid", NOW + timedelta(minutes=20), NOW)
        assert pause.until(conn, "sendgrid") == NOW + timedelta(minutes=20)
