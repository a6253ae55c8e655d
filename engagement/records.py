"""Typed records for what comes in (accounts, contacts, events), validated at the door."""

from __future__ import annotations

import json
import re
import zoneinfo
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _aware(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


class Record(BaseModel):
    """An incoming row; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def provided(self) -> dict[str, Any]:
        """Only the fields the row actually gave (so an upsert keeps the others)."""
        return {k: getattr(self, k) for k in self.model_fields_set}


class AccountIn(Record):
    """An account row."""

    id: str = Field(min_length=1, max_length=200)
    name: str = Field("", max_length=300)
    plan: str | None = Field(None, max_length=100)
    mrr: float = Field(0.0, ge=0)
    touch: Literal["high", "low", "tech"] | None = None
    signed_up_at: datetime | None = None
    renewal_date: date | None = None
    traits: dict[str, Any] = Field(default_factory=dict)

    _ts = field_validator("signed_up_at", mode="before")(_aware)
    _traits = field_validator("traits", mode="before")(_json_object)


class ContactIn(Record):
    """A contact row."""

    id: str = Field(min_length=1, max_length=200)
    account_id: str = Field(min_length=1, max_length=200)
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

    id: str | None = Field(None, max_length=200)
    contact_id: str = Field(min_length=1, max_length=200)
    account_id: str | None = Field(None, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    timestamp: datetime
    properties: dict[str, Any] = Field(default_factory=dict)

    _ts = field_validator("timestamp", mode="before")(_aware)
    _props = field_validator("properties", mode="before")(_json_object)
