"""The scorecard file format, as typed models (also the source of `engagement schema --kind scorecard`)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engagement.durations import Duration
from engagement.journeys import spec as journey_spec

Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)]
TIME_FIELDS = ("contact.created_at", "account.signed_up_at", "account.renewal_date")
METRICS = (
    "active_days",
    "active_share",
    "event_count",
    "milestones",
    "engagement",
    "nps",
    "csat",
    "days_since",
    "mrr_change",
    "trait",
)


class Strict(BaseModel):
    """Unknown keys are errors, so a misspelled key never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    within: Duration = Field(description="how far back, e.g. 30d")


class ActiveDays(Window):
    events: list[str] | None = Field(
        None, min_length=1, description="only these event names count (default: every product event)"
    )


class EventCount(Window):
    event: str = Field(min_length=1)


class Milestones(Strict):
    names: list[str] = Field(
        min_length=1, description="account milestones (first time anyone at the account)"
    )


class Nothing(Strict):
    """A metric without parameters."""


class DaysSince(Strict):
    field: Literal["contact.created_at", "account.signed_up_at", "account.renewal_date"] = Field(
        description="contact.created_at is the account's newest contact"
    )


class Trait(Strict):
    path: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", description="e.g. seats_used")


class Metric(Strict):
    """Exactly one metric."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"minProperties": 1, "maxProperties": 1}
    )
    active_days: ActiveDays | None = Field(
        None, description="distinct UTC days with product use, per contact"
    )
    active_share: Window | None = Field(None, description="share of contacts with an active day")
    event_count: EventCount | None = Field(None, description="the account's events of one name")
    milestones: Milestones | None = Field(None, description="how many of these the account reached")
    engagement: Nothing | None = Field(None, description="the account's engagement score per contact")
    nps: Window | None = Field(None, description="NPS (-100 to 100) of each contact's latest answer")
    csat: Window | None = Field(None, description="mean CSAT (1 to 5) of each contact's latest answer")
    days_since: DaysSince | None = None
    mrr_change: Window | None = Field(None, description="relative MRR change: -0.2 for a 20% contraction")
    trait: Trait | None = Field(None, description="a numeric account trait")

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"engagement": {}} if value == "engagement" else value

    @model_validator(mode="after")
    def _exactly_one(self) -> Metric:
        given = [name for name in METRICS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a metric is exactly one of {', '.join(METRICS)}; got {len(given)}")
        return self

    @property
    def kind(self) -> str:
        """The metric's name."""
        return next(name for name in METRICS if getattr(self, name) is not None)

    @property
    def params(self) -> Any:
        """The metric's parameters."""
        return getattr(self, self.kind)

    @property
    def within(self) -> timedelta | None:
        """The metric's window, if it has one."""
        return getattr(self.params, "within", None)


Finite = Annotated[float, Field(allow_inf_nan=False)]  # NaN or infinity would make every score NaN
Point = tuple[Finite, Finite]


class Measure(Strict):
    id: Id
    weight: float = Field(gt=0, le=1000, allow_inf_nan=False)
    metric: Metric
    points: list[Point] = Field(
        min_length=1,
        description="[value, points] pairs, values increasing; linear between, flat beyond the ends",
    )
    missing: Literal["skip"] | Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = Field(
        "skip", description="skip: leave the measure out of the score; a number: the points to use"
    )

    @field_validator("points")
    @classmethod
    def _points_rise(cls, pairs: list[Point]) -> list[Point]:
        if any(b <= a for (a, _), (b, _) in itertools.pairwise(pairs)):
            raise ValueError("the values (first of each pair) must increase")
        if any(not 0 <= y <= 100 for _, y in pairs):
            raise ValueError("the points (second of each pair) are between 0 and 100")
        return pairs


class Bands(Strict):
    green: float = Field(70.0, ge=0, le=100, allow_inf_nan=False)
    yellow: float = Field(40.0, ge=0, le=100, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.yellow > self.green:
            raise ValueError("yellow must not be above green")
        return self


class ScorecardSpec(Strict):
    id: Id
    name: str = ""
    applies_to: journey_spec.RawCondition | None = Field(
        None, description="an account condition; the first scorecard by `order` whose condition holds wins"
    )
    order: int = Field(100, description="lower first")
    bands: Bands = Bands()
    measures: list[Measure] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_measures(self) -> ScorecardSpec:
        ids = [m.id for m in self.measures]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate measure id {', '.join(duplicates)}")
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scorecard file, with the condition language spelled out."""
    schema: dict[str, Any] = journey_spec.swap_markers(ScorecardSpec.model_json_schema(by_alias=True))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "engagement scorecard"
    schema.setdefault("$defs", {})["Condition"] = journey_spec.condition_schema()
    return schema
