"""The journey file format, as typed models (also the source of `engagement schema`)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from engagement import vocab
from engagement.durations import Duration

CONDITION_REF = {"$ref": "#/$defs/Condition"}
_MARKER = {"x-engagement-condition": True}
RawCondition = Annotated[dict[str, Any], WithJsonSchema(_MARKER)]
StepId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    """Unknown keys are errors, so a misspelled key never passes silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EmailSpec(Strict):
    template: str = Field(description="templates/email/<template>.html.j2 and .txt.j2")
    subject: str = Field(description="Jinja2, e.g. 'Welcome, {{ contact.first_name }}'")


class Cta(Strict):
    label: str
    url: str


class InAppSpec(Strict):
    title: str
    body: str = ""
    cta: Cta | None = None
    expires: Duration | None = None


class NotifySpec(Strict):
    webhook: str = Field(description="a named webhook from config.toml: [webhooks.NAME] url = ...")
    text: str


class SurveySpec(Strict):
    kind: Literal["nps", "csat"] = Field(description="nps (0 to 10) or csat (1 to 5)")
    channel: Literal["email", "in_app"] = "email"
    question: str = Field(min_length=1, max_length=300)
    subject: str | None = Field(
        None, description="email surveys: Jinja2, e.g. 'One question, {{ contact.first_name }}'"
    )
    comment: str | None = Field(None, max_length=300, description="optional: asked after the score")
    expires: Duration | None = Field(None, description="in-app surveys: how long the question stays up")

    @model_validator(mode="after")
    def _subject_for_email(self) -> SurveySpec:
        if self.channel == "email" and not self.subject:
            raise ValueError("an email survey needs a `subject`")
        if self.channel == "in_app" and self.subject is not None:
            raise ValueError("`subject` is for email surveys; an in-app survey shows its `question`")
        return self


class StepBase(Strict):
    id: StepId | None = None
    if_: RawCondition | None = Field(None, alias="if", description="skip the step unless this holds")


Weight = Annotated[int, Field(gt=0, le=1_000_000)]
VARIANTS = "a message's variants: each changes some of the step's keys for its share of recipients"
WEIGHTS = "each variant's share, by id: {a: 3, b: 1} sends a to three in four (default: equal shares)"


class EmailVariant(Strict):
    """One variant of an email step: the keys it changes; the others are the step's."""

    id: StepId
    template: str | None = None
    subject: str | None = None


class InAppVariant(Strict):
    """One variant of an in-app step: the keys it changes; the others are the step's."""

    id: StepId
    title: str | None = None
    body: str | None = None
    cta: Cta | None = None
    expires: Duration | None = None


class SurveyVariant(Strict):
    """One variant of a survey step: the keys it changes; the others are the step's."""

    id: StepId
    question: str | None = Field(None, min_length=1, max_length=300)
    subject: str | None = None
    comment: str | None = Field(None, max_length=300)
    expires: Duration | None = None


class EmailStep(StepBase):
    email: EmailSpec
    variants: list[EmailVariant] | None = Field(None, min_length=2, description=VARIANTS)
    weights: dict[str, Weight] | None = Field(None, description=WEIGHTS)


class InAppStep(StepBase):
    in_app: InAppSpec
    variants: list[InAppVariant] | None = Field(None, min_length=2, description=VARIANTS)
    weights: dict[str, Weight] | None = Field(None, description=WEIGHTS)


class NotifyStep(StepBase):
    notify: NotifySpec


class SurveyStep(StepBase):
    survey: SurveySpec
    variants: list[SurveyVariant] | None = Field(None, min_length=2, description=VARIANTS)
    weights: dict[str, Weight] | None = Field(None, description=WEIGHTS)


class WaitStep(StepBase):
    wait: Duration


class WaitUntilStep(StepBase):
    wait_until: RawCondition
    timeout: Duration | None = None


class BranchSpec(Strict):
    if_: RawCondition = Field(alias="if")
    then: list[Step] = Field(min_length=1)
    else_: list[Step] = Field(default_factory=list, alias="else")


class BranchStep(StepBase):
    branch: BranchSpec


STEP_KINDS = ("email", "in_app", "notify", "survey", "wait_until", "wait", "branch")
STEP_TAGS = {f"<{kind} step>" for kind in STEP_KINDS}


def _step_kind(value: Any) -> str | None:
    keys = value if isinstance(value, dict) else vars(value) if isinstance(value, BaseModel) else {}
    found = [kind for kind in STEP_KINDS if kind in keys]
    return f"<{found[0]} step>" if len(found) == 1 else None


Step = Annotated[
    Annotated[EmailStep, Tag("<email step>")]
    | Annotated[InAppStep, Tag("<in_app step>")]
    | Annotated[NotifyStep, Tag("<notify step>")]
    | Annotated[SurveyStep, Tag("<survey step>")]
    | Annotated[WaitStep, Tag("<wait step>")]
    | Annotated[WaitUntilStep, Tag("<wait_until step>")]
    | Annotated[BranchStep, Tag("<branch step>")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step has exactly one of: " + ", ".join(STEP_KINDS),
    ),
]


class Trigger(Strict):
    event: str | None = None
    milestone: str | None = None
    condition: RawCondition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Trigger:
        given = [k for k in ("event", "milestone", "condition") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a trigger has exactly one of: event, milestone, condition")
        return self

    @property
    def kind(self) -> str:
        return "event" if self.event else "milestone" if self.milestone else "condition"


class ReEntryAfter(Strict):
    after: Duration


class SendWindow(Strict):
    days: str | list[str] = "mon-sun"
    hours: str = "00:00-24:00"
    timezone: str = "contact"

    @field_validator("days")
    @classmethod
    def _days(cls, value: str | list[str]) -> str | list[str]:
        parse_days(value)
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        parse_hours(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in ("contact", "account"):
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
                raise ValueError(
                    f"unknown time zone {value!r}: use contact, account or an IANA name"
                ) from exc
        return value


def parse_days(value: str | list[str]) -> frozenset[int]:
    """`mon-fri` or [mon, wed] into weekday numbers (Monday = 0)."""
    items = [value] if isinstance(value, str) else value
    result: set[int] = set()
    for item in items:
        start, _, end = item.strip().lower().partition("-")
        if start not in DAYS or (end and end not in DAYS):
            raise ValueError(f"bad days {item!r}: use mon..sun, a range like mon-fri, or a list")
        first, last = DAYS.index(start), DAYS.index(end or start)
        span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
        result.update(span)
    return frozenset(result)


def parse_hours(value: str) -> tuple[int, int]:
    """`09:00-17:00` into minutes after midnight (start, end)."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
    if not match:
        raise ValueError(f"bad hours {value!r}: use HH:MM-HH:MM, e.g. 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60 or end <= start:
        raise ValueError(f"bad hours {value!r}: the end must be after the start, within one day")
    return start, end


class HoldoutSpec(Strict):
    share: str | float = Field(description="share that enters but receives nothing, e.g. '10%'")
    by: vocab.HoldoutBy = Field(
        vocab.HoldoutBy.CONTACT,
        description="account: all contacts of an account share a group (a hash of journey and account id)",
    )

    @field_validator("share")
    @classmethod
    def _share(cls, value: str | float) -> str | float:
        holdout_fraction(value)
        return value


class JourneySpec(Strict):
    """One journey file."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)
    name: str
    status: Literal["active", "paused", "draft"] = "draft"
    audience: Literal["contact", "account"] = "contact"
    recipients: RawCondition | None = Field(None, description="account journeys: which contacts get messages")
    trigger: Trigger
    filter: RawCondition | None = None
    re_entry: Literal["never", "always"] | ReEntryAfter = "never"
    goal: RawCondition | None = None
    exit: RawCondition | None = None
    holdout: str | float | HoldoutSpec = Field(
        0, description="share that enters but receives nothing, e.g. '10%' or {share: 10%, by: account}"
    )
    send_window: SendWindow | None = None
    lookback: Duration = timedelta(days=1)
    priority: int = Field(0, description="higher goes first when the frequency cap holds messages")
    max_lateness: Duration | None = None
    steps: list[Step] = Field(min_length=1)
    moved: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=100)]] = Field(
        default_factory=dict,
        description="where people waiting at a removed step go: {OLD_STEP_ID: NEW_STEP_ID}"
        " (default: the removed step's next surviving step)",
    )

    @field_validator("holdout")
    @classmethod
    def _holdout(cls, value: str | float | HoldoutSpec) -> str | float | HoldoutSpec:
        if not isinstance(value, HoldoutSpec):
            holdout_fraction(value)
        return value

    @property
    def holdout_share(self) -> float:
        """The holdout as a fraction, 0.10 for `10%` or `{share: 10%}`."""
        return holdout_fraction(self.holdout.share if isinstance(self.holdout, HoldoutSpec) else self.holdout)

    @property
    def holdout_by(self) -> vocab.HoldoutBy:
        """What the holdout hashes: `holdout: 10%` is per subject, `{share, by: account}` per account."""
        return self.holdout.by if isinstance(self.holdout, HoldoutSpec) else vocab.HoldoutBy.CONTACT

    @model_validator(mode="after")
    def _recipients_for_accounts(self) -> JourneySpec:
        if self.recipients is not None and self.audience != "account":
            raise ValueError("recipients only applies to `audience: account` journeys")
        return self


def holdout_fraction(value: str | float) -> float:
    """`10%` (or 10) into 0.10."""
    text = str(value).strip()
    number = float(text[:-1]) if text.endswith("%") else float(text)
    if not 0 <= number <= 100:
        raise ValueError(f"holdout {value!r} must be between 0% and 100%")
    return number / 100.0


BranchSpec.model_rebuild()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a journey file, with the condition language spelled out."""
    schema: dict[str, Any] = swap_markers(JourneySpec.model_json_schema(by_alias=True))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "engagement journey"
    schema.setdefault("$defs", {})["Condition"] = condition_schema()
    return schema


def swap_markers(node: Any) -> Any:
    if node == _MARKER:
        return dict(CONDITION_REF)
    if isinstance(node, dict):
        return {k: swap_markers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [swap_markers(v) for v in node]
    return node


def condition_schema() -> dict[str, Any]:
    ref = CONDITION_REF
    number = {"type": "number"}
    bounds = {k: number for k in ("eq", "ne", "lt", "lte", "gt", "gte")}
    scalar = {"type": ["string", "number", "boolean"]}
    ops = {
        "type": "object",
        "properties": {
            **{k: scalar for k in ("eq", "ne", "lt", "lte", "gt", "gte", "contains")},
            "in": {"type": "array", "items": scalar},
            "not_in": {"type": "array", "items": scalar},
            "exists": {"type": "boolean"},
        },
        "additionalProperties": False,
    }
    dur = {"type": "string", "pattern": r"^\d+[smhdw]$"}
    days = {
        "type": "object",
        "required": ["field"],
        "properties": {
            "field": {"enum": ["contact.created_at", "account.signed_up_at", "account.renewal_date"]},
            **bounds,
        },
        "additionalProperties": False,
    }
    return {
        "description": "A condition: one or more of these keys (several keys mean all must hold).",
        "type": "object",
        "minProperties": 1,
        "properties": {
            "all": {"type": "array", "items": ref},
            "any": {"type": "array", "items": ref},
            "not": ref,
            "milestone": {"type": "string"},
            "within": dur,
            "event_count": {
                "type": "object",
                "required": ["event"],
                "properties": {"event": {"type": "string"}, "within": dur, **bounds},
                "additionalProperties": False,
            },
            "days_since": days,
            "days_until": days,
            "score": {"type": "object", "properties": bounds, "additionalProperties": False},
            "account_score": {"type": "object", "properties": bounds, "additionalProperties": False},
            "health": {"enum": ["green", "yellow", "red"]},
            "health_score": {"type": "object", "properties": bounds, "additionalProperties": False},
            "health_change": {
                "type": "object",
                "required": ["within"],
                "properties": {"within": {"type": "string", "pattern": r"^\d+[dw]$"}, **bounds},
                "additionalProperties": False,
            },
            "survey": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {"enum": ["nps", "csat"]},
                    "score": {"type": "object", "properties": bounds, "additionalProperties": False},
                    "within": dur,
                },
                "additionalProperties": False,
            },
        },
        "patternProperties": {r"^(contact|account)\.[A-Za-z0-9_.]+$": {"anyOf": [scalar, ops]}},
        "additionalProperties": False,
    }
