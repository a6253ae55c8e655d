"""What a condition is evaluated against besides the data: the moment and the score rules."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class EvalContext:
    """The instant of evaluation, the audience and the scoring parameters."""

    now: datetime
    audience: str = "contact"
    half_life_days: float = 14.0
    green: float = 60.0  # the bands of the audience's score (health conditions read them)
    yellow: float = 30.0
    contact_bands: tuple[float, float] | None = None  # an account context's contacts' (green, yellow)
    scorecards: bool = (
        False  # health conditions read the scorecards' health_score (else the engagement bands)
    )
    name: str = "now"  # what SQL parameters of this instant are named after (conditions/sql.py `instant`)
    # what SQL compiled for this instant alone (a bound beyond the calendar); such a statement is not reused
    unreusable: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def now_day(self) -> float:
        """`now` as fractional days since the Unix epoch (the unit scores are stored in)."""
        return day_number(self.now)

    @property
    def today(self) -> date:
        """The UTC calendar date of `now` (date fields count days from it)."""
        return self.now.astimezone(UTC).date()

    @property
    def rules(self) -> tuple[object, ...]:
        """Everything but the instant that compiled SQL depends on (part of a cached statement's key)."""
        return (
            self.audience,
            self.half_life_days,
            self.green,
            self.yellow,
            self.contact_bands,
            self.scorecards,
        )

    def window_start(self, within: timedelta) -> datetime | None:
        """`now - within`, or None when that is before year 1 (the window covers all time)."""
        try:
            return self.now - within
        except OverflowError:
            return None

    def decayed(self, value: float, as_of_day: float) -> float:
        """A stored score decayed to `now` (exponential, by half-life)."""
        return value * math.pow(0.5, (self.now_day - as_of_day) / self.half_life_days)

    def for_contacts(self) -> EvalContext:
        """The same moment for the contacts of this context's subjects (an account journey's recipients)."""
        if self.audience == "contact" or self.contact_bands is None:
            return replace(self, audience="contact")
        green, yellow = self.contact_bands
        return replace(self, audience="contact", green=green, yellow=yellow, contact_bands=None)

    def band(self, score: float) -> str:
        """The health band of a score."""
        return "green" if score >= self.green else "yellow" if score >= self.yellow else "red"


def day_number(when: datetime) -> float:
    """Fractional days since the Unix epoch."""
    return (when - EPOCH).total_seconds() / 86400.0
