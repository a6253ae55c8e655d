"""The scheduler's jobs: what runs, and when. Adding a job is one line in `JOBS`.

A job is a function of the engine and the clock's `now`, returning the counts to log.
Triggers are APScheduler's and fire on the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from engagement.clock import ManualClock
from engagement.config import Settings
from engagement.delivery import ledger
from engagement.engine import Engine
from engagement.health import cards, compute
from engagement.reports import digest
from engagement.scores import scoring

Counts = dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One scheduled job: its id, when it fires, what it does, and whether it also runs at start-up."""

    id: str
    when: Callable[[Settings], BaseTrigger]
    run: Callable[[Engine, datetime], Counts]
    at_start: bool = False


def every_tick(settings: Settings) -> BaseTrigger:
    """Every `scheduler.tick_seconds`."""
    return IntervalTrigger(seconds=settings.scheduler.tick_seconds, timezone=UTC)


def every_lease(settings: Settings) -> BaseTrigger:
    """As often as a sending lease can expire, but at most once a minute."""
    seconds = max(1, min(60, int(settings.limits.sending_lease.total_seconds())))
    return IntervalTrigger(seconds=seconds, timezone=UTC)


def daily(hour: int, minute: int = 0) -> Callable[[Settings], BaseTrigger]:
    """Once a day at hour:minute UTC."""
    return lambda _settings: CronTrigger(hour=hour, minute=minute, timezone=UTC)


def tick(engine: Engine, now: datetime) -> Counts:
    """Enroll, advance and send (one tick)."""
    report = engine.tick(now)
    d = report.dispatched
    return {
        "now": report.now.isoformat(),
        "enrolled": report.total("enrolled"),
        "converted": report.total("converted"),
        "queued": report.total("queued"),
        "sent": d.sent,
        "held": d.held,
        "skipped_late": d.skipped_late,
        "skipped_recent": d.skipped_recent,
        "in_doubt": d.in_doubt,
        "failed": d.failed,
        "rate_limited": d.rate_limited,
        **({"moved": [str(m) for m in report.moves]} if report.moves else {}),
        **({"journeys_failed": report.failures} if report.failures else {}),
    }


def sweep_in_doubt(engine: Engine, now: datetime) -> Counts:
    """Mark deliveries whose sender died mid-send (lease expired) `in_doubt`."""
    with engine.db.begin() as conn:
        return {"in_doubt": ledger.sweep(conn, now, engine.settings.limits.sending_lease)}


def score_snapshot(engine: Engine, now: datetime) -> Counts:
    """Record today's score and band of every contact and account, for the trend reports."""
    return {"rows": scoring.snapshot(engine.db, engine.settings, now)}


def every_health_refresh(settings: Settings) -> BaseTrigger:
    """Every `health.refresh`."""
    return IntervalTrigger(seconds=max(1, int(settings.health.refresh.total_seconds())), timezone=UTC)


def health_refresh(engine: Engine, now: datetime) -> Counts:
    """Recompute every account's scorecard health (nothing without scorecard files)."""
    found = cards.load(engine.settings)
    found.raise_problems()
    if not found.cards:
        return {"scorecards": 0}
    done = compute.refresh(engine.db, engine.settings, found, now)
    return {"accounts": done.accounts, "changed": done.changed}


def health_snapshot(engine: Engine, now: datetime) -> Counts:
    """Record today's health of every account, for `health_change` and the drops."""
    found = cards.load(engine.settings)
    found.raise_problems()
    if not found.cards:
        return {"scorecards": 0}
    return {"rows": compute.snapshot(engine.db, engine.settings, found, now)}


def weekly_digest(engine: Engine, now: datetime) -> Counts:
    """Send the week's digest once, on the first run on or after `reports.digest_weekday`."""
    return {"sent": digest.send_digest(engine.settings, engine.db, ManualClock(now))}


JOBS: tuple[Job, ...] = (
    Job("tick", every_tick, tick, at_start=True),
    Job("in-doubt-sweep", every_lease, sweep_in_doubt),
    Job(
        "score-snapshot", daily(0, 15), score_snapshot, at_start=True
    ),  # at start too: a missed day is filled
    Job("health-refresh", every_health_refresh, health_refresh, at_start=True),
    Job(
        "health-snapshot", daily(0, 20), health_snapshot, at_start=True
    ),  # at start too: a missed day is filled
    Job("weekly-digest", daily(8), weekly_digest),  # daily: it sends only once a week, on its weekday
)
