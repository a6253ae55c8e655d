"""The date range a report covers: `--since 30d` or explicit from/to dates, in UTC days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from engagement import errors
from engagement.durations import parse_duration

DEFAULT_SINCE = "30d"
MAX_DAYS = 3_660  # ten years of days: a longer range is a typo or an attack, and its daily series is huge


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, with the first and last day it covers."""

    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(microseconds=1)).date()

    def days(self) -> list[date]:
        """Every UTC day the period touches, in order."""
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(max(count, 0))]

    def label(self) -> str:
        return f"{self.first_day.isoformat()} to {self.last_day.isoformat()}"


def since(text: str, now: datetime) -> Period:
    """The period from `now - text` (e.g. `30d`) to `now`."""
    try:
        span = parse_duration(text)
    except ValueError as exc:
        raise errors.EngagementError(f"--since: {exc}") from exc
    try:
        return Period(now - span, now)
    except OverflowError:  # further back than the calendar goes: everything up to now
        return Period(datetime.min.replace(tzinfo=UTC), now)


def between(first: str, last: str) -> Period:
    """Whole UTC days from `first` to `last` inclusive (ISO dates)."""
    try:
        start, stop = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError as exc:
        raise errors.EngagementError(f"dates must be YYYY-MM-DD: {exc}") from exc
    if stop < start:
        raise errors.EngagementError(f"the range ends ({last}) before it starts ({first})")
    if (stop - start).days >= MAX_DAYS:
        raise errors.EngagementError(
            f"a report covers at most {MAX_DAYS:,} days; {first} to {last} is longer"
        )
    return Period(
        datetime.combine(start, time(), UTC), datetime.combine(stop + timedelta(days=1), time(), UTC)
    )


def choose(now: datetime, since_text: str | None, first: str | None, last: str | None) -> Period:
    """From/to dates when both are given, else `since` (default 30 days)."""
    if first or last:
        if not (first and last):
            raise errors.EngagementError("give both a from and a to date, or neither")
        return between(first, last)
    return since(since_text or DEFAULT_SINCE, now)
