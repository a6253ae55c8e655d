"""Send windows across time zones and DST: no message outside its window, none lost."""

from __future__ import annotations

import functools
import itertools
import zoneinfo
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engagement.delivery import windows
from engagement.delivery.windows import Window, is_open, next_open, resolve_zone
from engagement.journeys.spec import SendWindow

EVERY_DAY = frozenset(range(7))
MON, FRI, SAT, SUN = 0, 4, 5, 6
MINUTE = timedelta(minutes=1)
ZONES = sorted(zoneinfo.available_timezones())
# Zones whose clocks change in unusual ways, drawn more often than their share of ZONES.
ODD_ZONES = [
    "America/New_York",
    "America/Santiago",
    "America/St_Johns",
    "Africa/Casablanca",
    "Antarctica/Troll",
    "Asia/Gaza",
    "Australia/Lord_Howe",
    "Europe/London",
    "Pacific/Apia",
    "Pacific/Chatham",
]
FIRST, LAST = datetime(1990, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)
# A window opens at least once a week; two weeks also covers a week whose only window day
# falls in a DST gap.
ORACLE_LIMIT = 15 * 24 * 60


def at(key: str, *fields: int, fold: int = 0) -> datetime:
    """A local wall time in `key`, as UTC (aware datetimes in a repeated hour never equal another zone's)."""
    return utc(*fields).replace(tzinfo=ZoneInfo(key), fold=fold).astimezone(UTC)


def utc(*fields: int) -> datetime:
    year, month, day, hour, minute, second, micro = (*fields, 0, 0, 0, 0)[:7]
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# ---------------------------------------------------------------- independent oracle


def oracle_open(window: Window, instant: datetime, zone: ZoneInfo) -> bool:
    """Open iff the local wall clock's time of day is in [start, end) on a window day."""
    local = instant.astimezone(zone)
    time_of_day = local - local.replace(hour=0, minute=0, second=0, microsecond=0)  # wall difference
    return local.weekday() in window.days and (
        timedelta(minutes=window.start) <= time_of_day < timedelta(minutes=window.end)
    )


def oracle_change(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The exact instant in (before, after] where the offset stops being that of `before`."""
    offset = before.astimezone(zone).utcoffset()
    while after - before > timedelta(microseconds=1):
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset:
            before = middle
        else:
            after = middle
    return after


def oracle_next_open(window: Window, instant: datetime, zone: ZoneInfo) -> datetime:
    """Walk forward in one-minute UTC steps, also checking every transition at its exact instant.

    Offsets and window bounds are whole minutes, so a window opens on a UTC minute unless
    it opens at a transition; checking both finds the first open instant exactly.
    """
    if oracle_open(window, instant, zone):
        return instant
    previous, offset = instant, instant.astimezone(zone).utcoffset()
    step = instant.replace(second=0, microsecond=0) + MINUTE
    for _ in range(ORACLE_LIMIT):
        step_offset = step.astimezone(zone).utcoffset()
        assert step_offset is not None and step_offset % MINUTE == timedelta(0)
        if step_offset != offset:
            change = oracle_change(zone, previous, step)
            if oracle_open(window, change, zone):
                return change
            offset = step_offset
        if oracle_open(window, step, zone):
            return step
        previous, step = step, step + MINUTE
    raise AssertionError(f"no open instant within {ORACLE_LIMIT} minutes of {instant}")


# ---------------------------------------------------------------- strategies


@functools.cache
def transitions(key: str, year: int) -> tuple[datetime, ...]:
    """The instants in `year` where the zone's UTC offset changes, found by a daily scan."""
    zone, found = ZoneInfo(key), []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        following = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            found.append(oracle_change(zone, day, following))
        day = following
    return tuple(found)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Window, datetime, ZoneInfo]:
    """A window, an instant (anywhere, near a DST transition, or on a window edge) and a zone."""
    key = draw(st.one_of(st.sampled_from(ZONES), st.sampled_from(ODD_ZONES)))
    zone = ZoneInfo(key)
    near = transitions(key, draw(st.integers(FIRST.year, LAST.year - 1)))
    mode = draw(st.sampled_from(["anywhere", "near a transition", "on a window edge"]))
    start: int | None = None
    if mode == "near a transition" and near:
        change = draw(st.sampled_from(near))
        jitter = draw(
            st.one_of(
                st.integers(-120, 120).map(lambda s: timedelta(seconds=s)),
                st.integers(-48 * 60, 48 * 60).map(lambda m: timedelta(minutes=m)),
                st.integers(-4 * 86_400_000_000, 4 * 86_400_000_000).map(lambda u: timedelta(microseconds=u)),
            )
        )
        instant = change + jitter
        if draw(st.booleans()):  # a window starting near the wall times on either side of the jump
            walls = [(change - timedelta(microseconds=1)).astimezone(zone), change.astimezone(zone)]
            start = draw(st.sampled_from([w.hour * 60 + w.minute for w in walls])) + draw(
                st.integers(-60, 60)
            )
    else:
        seconds = draw(st.integers(0, int((LAST - FIRST).total_seconds())))
        instant = FIRST + timedelta(seconds=seconds, microseconds=draw(st.sampled_from([0, 0, 1, 999_999])))
    start = draw(st.integers(0, 1439)) if start is None else min(max(start, 0), 1439)
    length = draw(st.one_of(st.integers(1, 1440 - start), st.integers(1, min(90, 1440 - start))))
    window = Window(draw(st.frozensets(st.integers(0, 6), min_size=1)), start, start + length)
    if mode == "on a window edge":  # the local wall time of a window start or end, or just off it
        midnight = datetime.combine(instant.astimezone(zone).date(), time(), tzinfo=zone)
        edge = midnight + timedelta(minutes=draw(st.sampled_from([window.start, window.end])))
        nudge = draw(st.sampled_from([0, 0, -1, 1, -1_000_000, 60_000_000]))
        wall = (edge + timedelta(microseconds=nudge)).replace(fold=draw(st.sampled_from([0, 1])))
        instant = wall.astimezone(UTC)
    return window, instant, zone


PROPERTY = settings(max_examples=300, deadline=None)


# ---------------------------------------------------------------- properties


@PROPERTY
@given(cases())
def test_next_open_is_the_first_open_instant_by_a_minute_by_minute_walk(
    case: tuple[Window, datetime, ZoneInfo],
) -> None:
    window, instant, zone = case
    opens = next_open(window, instant, zone)
    assert opens.tzinfo is UTC
    assert opens >= instant
    assert is_open(window, opens, zone)
    assert is_open(window, instant, zone) == oracle_open(window, instant, zone)
    assert opens == oracle_next_open(window, instant, zone)
    if is_open(window, instant, zone):
        assert opens == instant
    else:
        # A window start or a transition: both fall on whole UTC minutes in tzdata.
        assert (opens.second, opens.microsecond) == (0, 0)


@PROPERTY
@given(cases(), st.integers(0, 10 * 86_400_000_000))
def test_next_open_is_idempotent_and_monotone(case: tuple[Window, datetime, ZoneInfo], later_by: int) -> None:
    window, instant, zone = case
    opens = next_open(window, instant, zone)
    assert next_open(window, opens, zone) == opens
    later = instant + timedelta(microseconds=later_by)
    opens_later = next_open(window, later, zone)
    assert opens_later >= opens
    if later <= opens:  # nothing opened in between, so waiting longer changes nothing
        assert opens_later == opens


def test_tzdata_never_changes_an_offset_twice_within_the_sampling_step() -> None:
    """The assumption next_open's transition search rests on, checked on every zone's data."""
    pure: Any = pytest.importorskip("zoneinfo._zoneinfo").ZoneInfo  # exposes the transitions
    low, high = utc(1800, 1, 1).timestamp(), utc(2200, 1, 1).timestamp()
    closest = timedelta.max
    for key in ZONES:
        zone = pure.no_cache(key)

        def offset(timestamp: int, zone: Any = zone) -> timedelta | None:
            return datetime.fromtimestamp(timestamp, zone).utcoffset()

        changes = [t for t in zone._trans_utc if low < t < high and offset(t - 1) != offset(t)]
        closest = min([closest, *(timedelta(seconds=b - a) for a, b in itertools.pairwise(changes))])
    assert closest > windows._SAMPLE


# ---------------------------------------------------------------- America/New_York


def test_a_window_inside_the_spring_forward_gap_is_empty_that_day_and_opens_the_next_valid_day() -> None:
    ny = ZoneInfo("America/New_York")
    sundays = Window(frozenset({SUN}), 2 * 60 + 15, 2 * 60 + 45)
    daily = Window(EVERY_DAY, 2 * 60 + 15, 2 * 60 + 45)
    gap_day = [utc(2026, 3, 8, 5) + MINUTE * m for m in range(23 * 60)]  # the 23-hour local day
    assert not any(is_open(daily, t, ny) for t in gap_day)
    assert next_open(sundays, at("America/New_York", 2026, 3, 8, 0), ny) == at(
        "America/New_York", 2026, 3, 15, 2, 15
    )
    assert next_open(daily, at("America/New_York", 2026, 3, 8, 0), ny) == utc(2026, 3, 9, 6, 15)  # 02:15 EDT


def test_a_window_spanning_the_spring_forward_gap_is_open_on_both_sides_of_it() -> None:
    ny = ZoneInfo("America/New_York")
    window = Window(frozenset({SUN}), 60 + 30, 3 * 60 + 30)
    assert next_open(window, at("America/New_York", 2026, 3, 8, 0), ny) == utc(2026, 3, 8, 6, 30)  # 01:30 EST
    assert is_open(window, utc(2026, 3, 8, 6, 59, 59), ny)  # 01:59:59 EST
    assert is_open(window, utc(2026, 3, 8, 7), ny)  # 03:00 EDT, the transition
    assert not is_open(window, utc(2026, 3, 8, 7, 30), ny)  # 03:30 EDT


def test_a_window_starting_inside_the_gap_opens_at_the_transition() -> None:
    ny = ZoneInfo("America/New_York")
    window = Window(EVERY_DAY, 2 * 60 + 30, 4 * 60)
    opens = next_open(window, at("America/New_York", 2026, 3, 8, 1), ny)
    assert opens == utc(2026, 3, 8, 7)
    assert opens.astimezone(ny).isoformat() == "2026-03-08T03:00:00-04:00"
    assert not is_open(window, opens - timedelta(microseconds=1), ny)


def test_a_window_in_the_fall_back_overlap_is_open_in_both_passes() -> None:
    ny = ZoneInfo("America/New_York")
    window = Window(frozenset({SUN}), 60 + 15, 60 + 45)
    first, second = utc(2026, 11, 1, 5, 15), utc(2026, 11, 1, 6, 15)  # 01:15 EDT, 01:15 EST
    assert (
        at("America/New_York", 2026, 11, 1, 1, 15),
        at("America/New_York", 2026, 11, 1, 1, 15, fold=1),
    ) == (
        first,
        second,
    )
    assert is_open(window, first, ny) and is_open(window, second, ny)
    assert not is_open(window, utc(2026, 11, 1, 5, 45), ny)
    assert next_open(window, utc(2026, 11, 1, 5), ny) == first
    assert next_open(window, utc(2026, 11, 1, 5, 45), ny) == second


def test_falling_back_into_a_window_reopens_it_at_the_transition() -> None:
    ny = ZoneInfo("America/New_York")
    window = Window(frozenset({SUN}), 30, 60 + 30)
    assert next_open(window, utc(2026, 11, 1, 5, 45), ny) == utc(2026, 11, 1, 6)  # 01:45 EDT -> 01:00 EST


# ---------------------------------------------------------------- Europe


@pytest.mark.parametrize(
    ("key", "skipped_start", "expected"),
    [
        ("Europe/London", 60 + 30, utc(2026, 4, 5, 0, 30)),  # 01:00-02:00 GMT never happens
        ("Europe/Berlin", 2 * 60 + 30, utc(2026, 4, 5, 0, 30)),  # 02:00-03:00 CET never happens
    ],
)
def test_europe_springs_forward_on_the_last_sunday_of_march(
    key: str, skipped_start: int, expected: datetime
) -> None:
    window = Window(frozenset({SUN}), skipped_start, skipped_start + 15)
    assert next_open(window, at(key, 2026, 3, 29, 0), ZoneInfo(key)) == expected


@pytest.mark.parametrize(
    ("key", "repeated_start", "passes"),
    [
        ("Europe/London", 60 + 15, (utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 1, 15))),
        ("Europe/Berlin", 2 * 60 + 15, (utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 1, 15))),
    ],
)
def test_europe_falls_back_on_the_last_sunday_of_october_and_the_window_opens_twice(
    key: str, repeated_start: int, passes: tuple[datetime, datetime]
) -> None:
    zone, window = ZoneInfo(key), Window(frozenset({SUN}), repeated_start, repeated_start + 30)
    assert next_open(window, at(key, 2026, 10, 25, 0), zone) == passes[0]
    assert next_open(window, passes[0] + timedelta(minutes=30), zone) == passes[1]
    assert is_open(window, passes[1] + timedelta(minutes=29, seconds=59), zone)


# ---------------------------------------------------------------- a journey's mon-fri window


WEEKDAYS = Window.from_spec(SendWindow(days="mon-fri", hours="09:00-17:00", timezone="contact"))


@pytest.mark.parametrize(
    ("key", "friday_close", "monday_open"),
    [
        # New York springs forward on Sunday 2026-03-08: Monday opens at 13:00 UTC, not 14:00.
        ("America/New_York", utc(2026, 3, 6, 22), utc(2026, 3, 9, 13)),
        # Sydney falls back on Sunday 2026-04-05 (southern hemisphere): 23:00 UTC, not 22:00.
        ("Australia/Sydney", utc(2026, 4, 3, 6), utc(2026, 4, 5, 23)),
        ("Europe/Berlin", utc(2026, 10, 23, 15), utc(2026, 10, 26, 8)),
    ],
)
def test_a_friday_17_00_message_goes_out_monday_09_00_local_across_a_weekend_dst_change(
    key: str, friday_close: datetime, monday_open: datetime
) -> None:
    zone = ZoneInfo(key)
    assert friday_close.astimezone(zone).strftime("%a %H:%M") == "Fri 17:00"
    assert not is_open(WEEKDAYS, friday_close, zone)
    assert is_open(WEEKDAYS, friday_close - timedelta(microseconds=1), zone)
    opens = next_open(WEEKDAYS, friday_close, zone)
    assert opens == monday_open
    assert opens.astimezone(zone).strftime("%a %H:%M") == "Mon 09:00"


# ---------------------------------------------------------------- odd offsets and odd days


@pytest.mark.parametrize(
    ("key", "expected"),
    [("Asia/Kolkata", utc(2026, 6, 1, 3, 30)), ("Asia/Kathmandu", utc(2026, 6, 1, 3, 15))],
)
def test_zones_with_30_and_45_minute_offsets_open_on_their_own_wall_clock(
    key: str, expected: datetime
) -> None:
    zone = ZoneInfo(key)
    assert next_open(WEEKDAYS, utc(2026, 6, 1, 0), zone) == expected  # a Monday
    assert next_open(WEEKDAYS, utc(2026, 6, 1, 0), zone).astimezone(zone).strftime("%H:%M") == "09:00"
    assert next_open(WEEKDAYS, at(key, 2026, 6, 5, 17), zone) == expected + timedelta(days=7)


def test_lord_howe_springs_forward_by_half_an_hour() -> None:
    zone = ZoneInfo("Australia/Lord_Howe")  # 02:00 +10:30 becomes 02:30 +11:00 at 15:30 UTC
    gap = Window(frozenset({SUN}), 2 * 60, 2 * 60 + 30)
    straddling = Window(frozenset({SUN}), 2 * 60 + 15, 3 * 60)
    assert next_open(straddling, at("Australia/Lord_Howe", 2026, 10, 4, 1), zone) == utc(2026, 10, 3, 15, 30)
    assert next_open(gap, at("Australia/Lord_Howe", 2026, 10, 4, 1), zone) == at(
        "Australia/Lord_Howe", 2026, 10, 11, 2
    )


def test_lord_howe_falls_back_by_half_an_hour_and_the_window_opens_twice() -> None:
    zone = ZoneInfo("Australia/Lord_Howe")  # 02:00 +11:00 becomes 01:30 +10:30 at 15:00 UTC
    window = Window(frozenset({SUN}), 60 + 40, 60 + 50)
    assert next_open(window, at("Australia/Lord_Howe", 2026, 4, 5, 0), zone) == utc(2026, 4, 4, 14, 40)
    assert next_open(window, utc(2026, 4, 4, 14, 50), zone) == utc(2026, 4, 4, 15, 10)
    assert not is_open(window, utc(2026, 4, 4, 15, 20), zone)


def test_apia_skipped_friday_2011_12_30_so_a_friday_window_waits_a_week() -> None:
    zone = ZoneInfo("Pacific/Apia")  # Thu 23:59:59 -10:00 was followed by Sat 00:00 +14:00
    fridays = Window(frozenset({FRI}), 9 * 60, 17 * 60)
    assert next_open(fridays, at("Pacific/Apia", 2011, 12, 29, 12), zone) == at("Pacific/Apia", 2012, 1, 6, 9)
    assert not any(is_open(fridays, utc(2011, 12, 29, 20) + MINUTE * m, zone) for m in range(2 * 24 * 60))


def test_apia_saturday_window_opens_at_the_jump_past_friday() -> None:
    zone = ZoneInfo("Pacific/Apia")
    thursday_night_and_saturday = Window(frozenset({3, SAT}), 0, 60)
    opens = next_open(thursday_night_and_saturday, at("Pacific/Apia", 2011, 12, 29, 12), zone)
    assert opens == utc(2011, 12, 30, 10)
    assert opens.astimezone(zone).isoformat() == "2011-12-31T00:00:00+14:00"
    assert next_open(Window(frozenset({MON, SAT}), 10 * 60, 11 * 60), utc(2011, 12, 30, 9), zone) == at(
        "Pacific/Apia", 2011, 12, 31, 10
    )


# ---------------------------------------------------------------- construction and zones


def test_a_window_needs_at_least_one_day() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        Window(frozenset(), 9 * 60, 17 * 60)


@pytest.mark.parametrize(
    ("days", "start", "end"), [({7}, 0, 60), ({MON}, 60, 60), ({MON}, -1, 60), ({MON}, 0, 1441)]
)
def test_a_window_refuses_impossible_days_and_minutes(days: set[int], start: int, end: int) -> None:
    with pytest.raises(ValueError, match="send window"):
        Window(frozenset(days), start, end)


def test_a_window_is_built_from_a_journey_send_window() -> None:
    assert Window.from_spec(SendWindow(days=["sat", "mon"], hours="00:00-24:00")) == Window(
        frozenset({MON, SAT}), 0, 1440
    )
    assert (WEEKDAYS.days, WEEKDAYS.start, WEEKDAYS.end) == (frozenset(range(5)), 9 * 60, 17 * 60)


def test_an_all_day_window_ends_exactly_at_midnight() -> None:
    saturdays, zone = Window(frozenset({SAT}), 0, 1440), ZoneInfo("Europe/Berlin")
    assert is_open(saturdays, at("Europe/Berlin", 2026, 6, 6, 23, 59, 59, 999999), zone)
    assert not is_open(saturdays, at("Europe/Berlin", 2026, 6, 7, 0), zone)
    assert next_open(saturdays, at("Europe/Berlin", 2026, 6, 7, 0), zone) == at(
        "Europe/Berlin", 2026, 6, 13, 0
    )


def test_naive_instants_are_refused() -> None:
    naive = utc(2026, 6, 1).replace(tzinfo=None)
    with pytest.raises(ValueError, match="naive"):
        next_open(WEEKDAYS, naive, ZoneInfo("UTC"))
    with pytest.raises(ValueError, match="naive"):
        is_open(WEEKDAYS, naive, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("setting", "contact", "account", "expected"),
    [
        ("contact", "Asia/Tokyo", "Europe/Paris", "Asia/Tokyo"),
        ("account", "Asia/Tokyo", "Europe/Paris", "Europe/Paris"),
        ("America/Chicago", "Asia/Tokyo", "Europe/Paris", "America/Chicago"),
        ("contact", None, "Europe/Paris", "UTC"),
        ("account", "Asia/Tokyo", None, "UTC"),
        ("contact", "Mars/Olympus_Mons", None, "UTC"),
        ("contact", "", None, "UTC"),
        ("contact", "America", None, "UTC"),  # a folder of zones, not a zone
        ("contact", "../etc/passwd", None, "UTC"),
        ("contact", "zone.tab", None, "UTC"),
        ("Not/A_Zone", "Asia/Tokyo", None, "UTC"),
    ],
)
def test_resolve_zone_uses_the_contact_account_or_named_zone_and_falls_back_to_utc(
    setting: str, contact: str | None, account: str | None, expected: str
) -> None:
    assert resolve_zone(setting, contact, account) == ZoneInfo(expected)
