"""Scores follow responses as they arrive, without making the request that brought them wait."""

from __future__ import annotations

import logging
import threading

from engagement.clock import Clock
from engagement.config import Settings
from engagement.scores import scoring
from engagement.store.database import Database

log = logging.getLogger(__name__)
SETTLE = 0.5  # seconds between the first poke and the pass it starts


class BackgroundScorer:
    """One thread that credits new responses and events whenever it is poked; pokes coalesce.

    Crediting is incremental and idempotent (see `scoring.credit`), so a poke that arrives
    while a pass runs just causes one more pass, and a pass lost to a crash is made up by the
    next poke or the next tick. A pass starts `settle` seconds after the poke that asks for it,
    so a burst of requests is credited in a few passes rather than one pass per request (each
    pass has a fixed cost: the scorers' lock, three INSERT … SELECT statements, a commit).
    """

    def __init__(self, db: Database, settings: Settings, clock: Clock, *, settle: float = SETTLE) -> None:
        self._db, self._settings, self._clock = db, settings, clock
        self._settle = settle
        self._wake = threading.Event()
        self._stop = threading.Event()  # set once: ends the thread, and cuts a settling wait short
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Ask for a credit pass soon (returns at once)."""
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="scorer", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """Finish the pass under way, if any, and end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop.is_set():
                return
            self._stop.wait(self._settle)  # pokes arriving meanwhile join this pass
            if self._stop.is_set():
                return  # the next start's first poke, or the next tick, credits what this pass would have
            self._wake.clear()
            try:
                scoring.credit(self._db, self._settings, self._clock.now())
            except Exception:  # the next poke or tick retries; the request that poked has its answer
                log.exception("crediting engagement scores failed")
