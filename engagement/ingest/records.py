"""Typed records for what comes in (accounts, contacts, events, revenue), validated at the door."""

from __future__ import annotations

import json
import re
import zoneinfo
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from engagement import values
from engagement.values import Id

# no spaces or control characters (a NUL included) anywhere in an address
EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")


def _aware(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return values.instant(value)
    return value


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = values.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg}") from exc
        values.checked(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


Day = Annotated[date, AfterValidator(values.day)]


class Record(BaseModel):
    """An incoming row; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def provided(self) -> dict[str, Any]:
        """Only the fields the row actually gave (so an upsert keeps the others)."""
        return {k: getattr(self, k) for k in self.model_fields_set}


class AccountIn(Record):
    """An account row."""

    id: Id
    name: str = Field("", max_length=300)
    plan: str | None = Field(None, max_length=100)
    mrr: float = Field(0.0, ge=0, allow_inf_nan=False)
    touch: Literal["high", "low", "tech"] | None = None
    signed_up_at: datetime | None = None
    renewal_date: Day | None = None
    traits: dict[str, Any] = Field(default_factory=dict)

    _ts = field_validator("signed_up_at", mode="before")(_aware)
    _traits = field_validator("traits", mode="before")(_json_object)


class ContactIn(Record):
    """A contact row."""

    id: Id
    account_id: Id
    email: str | None = Field(None, max_length=320)
    first_name: str = Field("", max_length=200)
    last_name: str = Field("", max_length=200)
    role: str | None = Field(None, max_length=100)
    timezone: str = "UTC"
    created_at: datetime | None = None
    traits: dict[str, Any] = Field(default_factory=dict)

    _ts = field_validator("created_at", mode="before")(_aware)
    _traits = field_validator("traits", mode="before")(_json_object)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.fullmatch(value):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from exc
        return value


class EventIn(Record):
    """An event row (a product event, or one the engine records itself)."""

    id: Id | None = None
    contact_id: Id
    account_id: Id | None = None
    name: str = Field(min_length=1, max_length=200)
    timestamp: datetime
    properties: dict[str, Any] = Field(default_factory=dict)

    _ts = field_validator("timestamp", mode="before")(_aware)
    _props = field_validator("properties", mode="before")(_json_object)


class RevenueIn(Record):
    """A revenue row: from `effective_at` on, the account pays `mrr` a month."""

    account_id: Id
    effective_at: datetime
    mrr: float = Field(ge=0, allow_inf_nan=False)
    plan: str | None = Field(None, max_length=100)
    renewal_date: Day | None = None

    _ts = field_validator("effective_at", mode="before")(_aware)
