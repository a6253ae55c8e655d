"""`engagement worker` / `engagement run`: the scheduled jobs until told to stop; SIGTERM finishes the batch."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC
from types import FrameType
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from engagement import errors
from engagement.clock import SystemClock
from engagement.engine import Engine
from engagement.running import jobs
from engagement.store import worker_lock

log = logging.getLogger("engagement.running.worker")


class Server(Protocol):
    """What the worker needs of a server run beside it (uvicorn.Server)."""

    should_exit: bool
    started: bool

    def run(self) -> None: ...


class ServerDidNotStart(errors.EngagementError):
    """The HTTP API did not start (is the port taken?); see the log above, or pick another --port."""


def run(engine: Engine, *, server: Server | None = None, schedule: Sequence[jobs.Job] = jobs.JOBS) -> None:
    """Run `schedule` (coalescing missed runs, never two of one job at once) until SIGTERM or SIGINT.

    With `server`, serve it in a thread beside the scheduler (`engagement run`) and stop it last.
    """
    with worker_lock.exclusive(engine.db):
        scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        started = SystemClock().now()  # APScheduler's triggers run on the wall clock
        for job in schedule:
            scheduler.add_job(
                _logged,
                job.when(engine.settings),
                args=(engine, job),
                id=job.id,
                **({"next_run_time": started} if job.at_start else {}),
            )
        signalled = threading.Event()

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: finishing the current batch, then stopping", signal.Signals(signum).name)
            engine.stop()
            signalled.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        serving = threading.Thread(target=server.run, name="api", daemon=True) if server else None
        if server and serving:
            serving.start()
            _wait_started(server, serving)
        log.info(
            "worker started: pid=%d jobs=%s tick_seconds=%s database=%s",
            os.getpid(),
            ",".join(j.id for j in schedule),
            engine.settings.scheduler.tick_seconds,
            engine.db.url.split("@")[-1],
        )
        scheduler.start()
        # The scheduler is shut down here, never in the handler: a signal can land while the scheduler's
        # loop updates its job store, and a shutdown in between empties that store (JobLookupError, exit 1).
        # Wait in short slices: the kernel may deliver the signal to one of the scheduler's threads, and
        # Python then runs the handler only when the main thread next runs Python code; a wait without a
        # timeout would never wake up to do that, and the signal would be ignored.
        while not signalled.wait(timeout=0.2):
            pass
        scheduler.shutdown(wait=True)
        if server and serving:
            server.should_exit = True
            serving.join(timeout=30)
        log.info("worker stopped: pid=%d", os.getpid())


def _wait_started(server: Server, serving: threading.Thread, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not server.started:
        if not serving.is_alive() or time.monotonic() > deadline:
            raise ServerDidNotStart()
        time.sleep(0.02)


def _logged(engine: Engine, job: jobs.Job) -> None:
    """Run one job at the clock's time and log one line: its counts and how long it took."""
    started = time.perf_counter()
    try:
        counts = job.run(engine, engine.clock.now())
    except Exception:
        log.exception("%s failed after %.2fs", job.id, time.perf_counter() - started)
        return
    fields = " ".join(f"{k}={v}" for k, v in counts.items())
    log.info("%s %s seconds=%.2f", job.id, fields, time.perf_counter() - started)
