"""What a report holds: plain dataclasses every output (table, CSV, JSON, HTML, digest) reads."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime

from engagement.reports.period import Period


@dataclass
class Counts:
    """The funnel numbers of one journey, one step or one day."""

    entered: int = 0
    holdout: int = 0
    sent: int = 0
    delivered: int = 0
    unique_opens: int = 0
    unique_clicks: int = 0
    nudges_seen: int = 0
    nudges_clicked: int = 0
    nudges_dismissed: int = 0
    unsubscribes: int = 0
    bounces: int = 0
    complaints: int = 0
    held_cap: int = 0
    held_window: int = 0
    skipped_late: int = 0
    suppressed: int = 0
    in_doubt: int = 0
    failed: int = 0
    conversions: int = 0

    def add(self, other: Counts) -> None:
        """Add `other` into this one, field by field."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def rate(self, base: int) -> float | None:
        """Conversions over `base` (None when base is 0)."""
        return self.conversions / base if base else None


COUNT_FIELDS = tuple(f.name for f in fields(Counts))
ENROLLMENT_FIELDS = ("entered", "holdout")  # not meaningful per step


@dataclass
class StepCounts:
    """One message step's numbers; its conversions are recipients whose enrollment converted."""

    step: str
    channel: str
    counts: Counts

    @property
    def conversion_rate(self) -> float | None:
        return self.counts.rate(self.counts.sent)


@dataclass
class DayCounts:
    """One UTC day: message activity on that day, entries (and their conversions) of that day."""

    day: date
    counts: Counts

    @property
    def conversion_rate(self) -> float | None:
        return self.counts.rate(self.counts.entered)


@dataclass
class Lift:
    """Goal conversion in treatment vs holdout, with the difference and its 95% interval."""

    treated: int
    treated_converted: int
    holdout: int
    holdout_converted: int
    treated_rate: float | None
    holdout_rate: float | None
    absolute: float | None
    relative: float | None
    low: float | None
    high: float | None
    method: str
    verdict: str


@dataclass
class RetentionGroup:
    """One group's accounts (one entry each) and what they paid at entry and `window` after it."""

    group: str  # treatment | holdout
    accounts: int  # entries, one per account
    pending: int  # entered less than the window ago: not judged yet
    paying_at_entry: int  # judged entries whose account paid at entry (the base of both rates)
    still_paying: int  # of those, paying at entry + window (MRR > 0)
    mrr_at_entry: float
    mrr_after: float  # the same accounts' MRR at entry + window

    @property
    def judged(self) -> int:
        return self.accounts - self.pending

    @property
    def kept_rate(self) -> float | None:
        return self.still_paying / self.paying_at_entry if self.paying_at_entry else None

    @property
    def net_mrr_retained(self) -> float | None:
        return self.mrr_after / self.mrr_at_entry if self.mrr_at_entry > 0 else None


@dataclass
class Retention:
    """Did the journey keep customers: treatment vs holdout `window_days` after entry, with the lifts."""

    window_days: float
    treatment: RetentionGroup
    holdout: RetentionGroup
    kept_lift: float | None  # treatment - holdout share still paying (fraction; shown in points)
    kept_low: float | None
    kept_high: float | None
    nrr_lift: float | None  # treatment - holdout net MRR retained
    nrr_low: float | None
    nrr_high: float | None
    verdict: str
    method: str


@dataclass
class TtvCohort:
    """Days from signup to the goal milestone for one weekly signup cohort and one group."""

    week: date
    group: str  # treatment | holdout
    people: int
    reached: int
    median_days: float | None
    p75_days: float | None
    within_7: float | None
    within_14: float | None
    within_30: float | None


@dataclass
class SurveyFigures:
    """One survey step's figures for one touch tier (or all tiers): answers, and NPS or CSAT.

    `answered` counts the step's messages sent in the period that have an answer; the score figures
    count people, from each contact's latest answer to the step in the period.
    """

    step: str
    kind: str  # a vocab.SurveyKind
    touch: str  # a touch tier, or ALL_TIERS
    sent: int = 0
    answered: int = 0
    respondents: int = 0
    promoters: int = 0  # NPS 9-10
    passives: int = 0  # NPS 7-8
    detractors: int = 0  # NPS 0-6
    score_sum: int = 0
    satisfied: int = 0  # CSAT 4-5
    nps: float | None = None  # -100..100
    nps_low: float | None = None
    nps_high: float | None = None
    csat_mean: float | None = None  # 1..5
    csat_satisfied: float | None = None  # share of respondents with 4 or 5

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.sent if self.sent else None


@dataclass
class JourneyReport:
    """Everything about one journey over the period."""

    id: str
    name: str
    audience: str
    goal_milestone: str | None
    totals: Counts
    steps: list[StepCounts]
    daily: list[DayCounts]
    lift: Lift | None
    ttv: list[TtvCohort]
    ttv_note: str
    retention: Retention | None = None
    surveys: list[SurveyFigures] = field(default_factory=list)

    @property
    def conversion_rate(self) -> float | None:
        return self.totals.rate(self.totals.entered)


@dataclass
class BandDay:
    """How many contacts or accounts were in each band on one day."""

    day: date
    subject_type: str
    green: int = 0
    yellow: int = 0
    red: int = 0


@dataclass
class TurnedRed:
    """A contact or account that is red now and was not a week earlier."""

    subject_type: str
    subject_id: str
    value: float
    previous_band: str
    day: date


@dataclass
class TopStep:
    """A step ranked by how many of its messages got a click (email) or a nudge click."""

    journey: str
    step: str
    channel: str
    sent: int
    responded: int
    response_rate: float


@dataclass
class Report:
    """A whole report: every journey, the score bands and the steps people respond to most."""

    period: Period
    generated_at: datetime
    journeys: list[JourneyReport]
    bands: list[BandDay] = field(default_factory=list)
    turned_red: list[TurnedRed] = field(default_factory=list)
    top_steps: list[TopStep] = field(default_factory=list)
    min_sample: int = 30
    note: str = ""

    def journey(self, journey_id: str) -> JourneyReport:
        return next(j for j in self.journeys if j.id == journey_id)
