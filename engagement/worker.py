"""`engagement worker`: tick on a schedule until told to stop; SIGTERM finishes the current batch."""

from __future__ import annotations

import logging
import signal
from datetime import UTC
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from engagement.engine import Engine

log = logging.getLogger("engagement.worker")


def run(engine: Engine) -> None:
    """Tick every `scheduler.tick_seconds` (coalescing missed runs, never two at once) until signalled."""
    scheduler = BlockingScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
    seconds = engine.settings.scheduler.tick_seconds
    scheduler.add_job(
        lambda: _tick(engine),
        IntervalTrigger(seconds=seconds, timezone=UTC),
        id="tick",
        next_run_time=engine.clock.now(),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current tick, then stopping", signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker started: a tick every %ss on %s", seconds, engine.db.url.split("@")[-1])
    scheduler.start()


def _tick(engine: Engine) -> None:
    report = engine.tick()
    d = report.dispatched
    log.info(
        "tick now=%s enrolled=%d queued=%d sent=%d held=%d skipped_late=%d in_doubt=%d failed=%d seconds=%.2f",
        report.now.isoformat(), report.total("enrolled"), report.total("queued"), d.sent, d.held,
        d.skipped_late, d.in_doubt, d.failed, report.seconds,
    )  # fmt: skip
