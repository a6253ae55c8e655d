"""`engagement worker`: tick on a schedule until told to stop; SIGTERM finishes the current batch."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from engagement.engine import Engine

log = logging.getLogger("engagement.worker")


def run(engine: Engine) -> None:
    """Tick every `scheduler.tick_seconds` (coalescing missed runs, never two at once) until signalled."""
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
    seconds = engine.settings.scheduler.tick_seconds
    scheduler.add_job(
        lambda: _tick(engine),
        IntervalTrigger(seconds=seconds, timezone=UTC),
        id="tick",
        next_run_time=engine.clock.now(),
    )
    signalled = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current batch, then stopping", signal.Signals(signum).name)
        engine.stop()
        signalled.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker started: a tick every %ss on %s", seconds, engine.db.url.split("@")[-1])
    scheduler.start()
    # The scheduler is shut down here, never in the handler: a signal can land while the scheduler's loop
    # updates its job store, and a shutdown in between empties that store under it (JobLookupError, exit 1).
    signalled.wait()
    scheduler.shutdown(wait=True)


def _tick(engine: Engine) -> None:
    report = engine.tick()
    d = report.dispatched
    log.info(
        "tick now=%s enrolled=%d queued=%d sent=%d held=%d skipped_late=%d in_doubt=%d failed=%d seconds=%.2f",
        report.now.isoformat(),
        report.total("enrolled"),
        report.total("queued"),
        d.sent,
        d.held,
        d.skipped_late,
        d.in_doubt,
        d.failed,
        report.seconds,
    )
