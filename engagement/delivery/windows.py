"""Send windows: whether an instant is inside a journey's window, and when it next opens.

A window is judged on the local wall clock of the recipient's zone. Around DST changes
the wall clock jumps: in a gap (spring forward) the skipped wall times never happen, so a
window that starts inside the gap opens at the transition; in an overlap (fall back) the
repeated wall times happen twice, and both passes are inside the window if the wall time is.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engagement.clock import as_utc
from engagement.journeys.spec import SendWindow, parse_days, parse_hours

MINUTES_PER_DAY = 24 * 60
# tzdata never changes a zone's UTC offset twice within 6 hours (the closest pair in its
# whole history is about 4 days apart; tests/test_windows.py checks it), so sampling the
# offset every 6 hours and bisecting where it differs finds every transition exactly.
_SAMPLE = timedelta(hours=6)
_RESOLUTION = timedelta(microseconds=1)


@dataclass(frozen=True)
class Window:
    """Weekdays (Monday = 0) and minutes after local midnight, `start` inclusive, `end` exclusive."""

    days: frozenset[int]
    start: int
    end: int

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a send window needs at least one day, e.g. days: mon-fri")
        if not self.days <= frozenset(range(7)):
            raise ValueError(f"send window days {sorted(self.days)} must be weekday numbers 0 (Monday) to 6")
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise ValueError(
                f"send window minutes {self.start}-{self.end} must satisfy 0 <= start < end <= 1440"
            )

    @classmethod
    def from_spec(cls, spec: SendWindow) -> Window:
        """The window of a journey file's `send_window`."""
        start, end = parse_hours(spec.hours)
        return cls(parse_days(spec.days), start, end)


def is_open(window: Window, instant: datetime, zone: ZoneInfo) -> bool:
    """True when the instant's local wall time in `zone` is inside the window."""
    local = as_utc(instant).astimezone(zone)
    minute = local.hour * 60 + local.minute
    return local.weekday() in window.days and window.start <= minute < window.end


def next_open(window: Window, instant: datetime, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant at or after `instant` inside the window (`instant` itself if open)."""
    at = as_utc(instant)
    while True:
        # Between two transitions the offset is fixed, so wall time is UTC plus that offset.
        offset = _offset(at, zone)
        candidate = _first_open_wall(window, at + offset) - offset
        change = _next_change(zone, at, candidate, offset)
        if change is None:
            return candidate
        at = change


def resolve_zone(setting: str, contact_timezone: str | None, account_timezone: str | None) -> ZoneInfo:
    """The zone a window is judged in: `contact`, `account` or an IANA name; UTC if unknown or missing."""
    key = {"contact": contact_timezone, "account": account_timezone}.get(setting, setting)
    if not key:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows the offset of an aware instant
    return offset


def _first_open_wall(window: Window, wall: datetime) -> datetime:
    """The earliest wall time at or after `wall` inside the window, on a clock that never jumps.

    Wall times are carried as UTC-labelled datetimes so that no naive datetime exists.
    """
    midnight = datetime.combine(wall.date(), time(), tzinfo=UTC)
    for ahead in range(8):
        day = midnight + timedelta(days=ahead)
        if day.weekday() in window.days and wall < day + timedelta(minutes=window.end):
            return max(wall, day + timedelta(minutes=window.start))
    raise AssertionError("unreachable: every window has a day within the next week")


def _next_change(zone: ZoneInfo, after: datetime, until: datetime, offset: timedelta) -> datetime | None:
    """The first instant in (after, until] whose UTC offset is not `offset`, or None."""
    low = after
    while low < until:
        high = min(low + _SAMPLE, until)
        if _offset(high, zone) != offset:
            while high - low > _RESOLUTION:
                middle = low + (high - low) // 2
                if _offset(middle, zone) == offset:
                    low = middle
                else:
                    high = middle
            return high
        low = high
    return None
