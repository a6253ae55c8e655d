"""One worker per SQLite database: a file lock beside the database file, released even by SIGKILL."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engagement import errors
from engagement.store.database import Database


class AnotherWorker(errors.EngagementError):
    """Another engagement worker is running on this SQLite database; SQLite allows one at a time."""


def lock_path(db: Database) -> Path | None:
    """The lock file of a SQLite file database (None for PostgreSQL and in-memory SQLite)."""
    path = db.engine.url.database
    if db.dialect != "sqlite" or not path or path == ":memory:":
        return None
    return Path(path + ".worker-lock")


@contextmanager
def exclusive(db: Database) -> Iterator[None]:
    """Hold the database's worker lock while the block runs; refuse if another process holds it."""
    path = lock_path(db)
    if path is None:  # PostgreSQL: any number of workers (SKIP LOCKED claims, advisory locks)
        yield
        return
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process"
            raise AnotherWorker(
                f"another engagement worker ({holder}) is running on the SQLite database {db.engine.url.database}; "
                "SQLite allows one worker at a time, so this one did not start. Stop the other one, or move "
                'to PostgreSQL (database.url = "postgresql://…") to run several workers.'
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
