"""The one place that reads the system time; everything else takes `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    """Tells the current time as a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulate, demo)."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to `when`."""
        self._now = as_utc(when)

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward and return the new time."""
        self._now += by
        return self._now


class ScaledClock:
    """Simulated time that runs `speed` times as fast as the wall clock from `wall_origin`.

    Several processes given the same three values agree on the time, so multi-process tests can run
    30 days in a minute, and `speed=1` with a later `origin` stands in for an outage.
    """

    def __init__(self, origin: datetime, wall_origin: datetime, speed: float = 1.0) -> None:
        self.origin = as_utc(origin)
        self.wall_origin = as_utc(wall_origin)
        self.speed = speed

    def now(self) -> datetime:
        """Return the simulated time for this wall-clock moment."""
        return self.origin + (datetime.now(UTC) - self.wall_origin) * self.speed


class FileClock:
    """Simulated time that another process moves by rewriting a file holding one ISO instant.

    Several workers reading one file share one stepped clock (multi-worker drills and tests).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        """Return the instant the file holds now."""
        return parse_instant(self.path.read_text())

    def set(self, when: datetime) -> None:
        """Move every reader to `when` (written whole, then renamed, so no reader sees half of it)."""
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(as_utc(when).isoformat())
        partial.replace(self.path)


def as_utc(value: datetime) -> datetime:
    """Return `value` in UTC; a naive datetime is a bug and is refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; pass an aware one")
    return value.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; without an offset it is taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
