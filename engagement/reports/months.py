"""The calendar months a retention report covers: `--from YYYY-MM --to YYYY-MM`, in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from engagement import errors

DEFAULT_MONTHS = 12  # without --from, the range is the 12 months up to --to (default: the current month)
MAX_MONTHS = 240  # twenty years: a longer range is a typo (or an attack on the output's size)
MONTH = re.compile(r"(\d{4})-(\d{2})")


def number(year: int, month: int) -> int:
    """Months since the start of year 0 (January of year 1 is 12): month arithmetic is integer arithmetic."""
    return year * 12 + month - 1


def first_instant(n: int) -> datetime:
    """The first UTC instant of month number `n`."""
    return datetime(n // 12, n % 12 + 1, 1, tzinfo=UTC)


def label(n: int) -> str:
    """`YYYY-MM` of month number `n`."""
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


@dataclass(frozen=True)
class Months:
    """Consecutive calendar months, `first` to `last` inclusive, as month numbers."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def boundary(self, k: int) -> datetime:
        """The first instant of the k-th month of the range (k = count: the instant the range ends)."""
        return first_instant(self.first + k)

    def labels(self) -> list[str]:
        """`YYYY-MM` of every month, in order."""
        return [label(n) for n in range(self.first, self.last + 1)]

    def describe(self) -> str:
        return f"{label(self.first)} to {label(self.last)}"


def parse(option: str, text: str) -> int:
    """A `YYYY-MM` option's month number; the error names the option."""
    found = MONTH.fullmatch(text.strip())
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "…"
        raise errors.EngagementError(f"{option}: {shown} is not a month written YYYY-MM (e.g. 2026-03)")
    return number(int(found.group(1)), int(found.group(2)))


def choose(
    now: datetime, first: str | None, last: str | None, options: tuple[str, str] = ("--from", "--to")
) -> Months:
    """The months from `--from` to `--to`; `--to` defaults to the month of `now`, `--from` to 11 before it.

    Errors name the option as `options` spell them (the API's query parameters are `from` and `to`)."""
    since, until = options
    stop = parse(until, last) if last else number(now.year, now.month)
    start = parse(since, first) if first else stop - (DEFAULT_MONTHS - 1)
    if stop < start:
        raise errors.EngagementError(f"{until}: {label(stop)} is before {since} {label(start)}")
    if stop - start + 1 > MAX_MONTHS:
        raise errors.EngagementError(
            f"{since}: a retention report covers at most {MAX_MONTHS} months; {label(start)} to {label(stop)} is longer"
        )
    if start < number(1, 1):
        raise errors.EngagementError(
            f"{since}: the range would start before the year 1 ({DEFAULT_MONTHS} months to --to)"
        )
    if stop >= number(9999, 12):  # the instant the range ends (the next month's first) must exist too
        raise errors.EngagementError(f"{until}: {label(stop)} is past the end of the calendar")
    return Months(start, stop)
