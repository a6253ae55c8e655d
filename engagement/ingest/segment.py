"""Segment's HTTP tracking API calls, typed, and what a batch of them means for our records.

`plan` is pure: given the calls (in order), the current account and traits of the people they
name, and `now`, it returns the accounts, contacts and events to write. `intake.write` does it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from engagement import errors, values
from engagement.ingest.records import AccountIn, ContactIn, EventIn

TYPES = frozenset({"identify", "track", "group", "page", "screen", "alias"})


def _id(value: Any) -> Any:
    # Segment's SDKs accept numeric ids and send them as strings; some callers send the number
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _object(value: Any) -> Any:
    return {} if value is None else value


Id = Annotated[values.Id, BeforeValidator(_id)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_object)]


class Call(BaseModel):
    """The fields every Segment call shares (unknown ones, such as `integrations`, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    userId: Id | None = None
    anonymousId: Id | None = None
    messageId: values.Id | None = None  # it becomes the event's id
    timestamp: datetime | None = None
    context: JsonObject = {}
    writeKey: str | None = None

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else values.instant(value)


class Identify(Call):
    """Who a user is: traits."""

    type: Literal["identify"] = "identify"
    traits: JsonObject = {}


class Track(Call):
    """Something a user did."""

    type: Literal["track"] = "track"
    event: str = Field(min_length=1, max_length=200)
    properties: JsonObject = {}


class Group(Call):
    """The account (group) a user belongs to, with the account's traits."""

    type: Literal["group"] = "group"
    groupId: Id
    traits: JsonObject = {}


class Page(Call):
    """A page (or app screen) a user viewed."""

    type: Literal["page", "screen"] = "page"
    name: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=200)
    properties: JsonObject = {}


class Alias(Call):
    """Two ids for one user; accepted and skipped (contacts are keyed by userId only)."""

    type: Literal["alias"] = "alias"
    previousId: Id | None = None


Message = Annotated[Identify | Track | Group | Page | Alias, Field(discriminator="type")]


class Batch(BaseModel):
    """`POST /v1/batch`: many calls in one request."""

    model_config = ConfigDict(extra="ignore")

    batch: list[Message]
    writeKey: str | None = None
    context: JsonObject = {}


# Segment's reserved traits that have a column of their own; everything else stays in `traits`.
CONTACT_TRAITS = {
    "email": "email",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "role": "role",
    "timezone": "timezone",
    "createdAt": "created_at",
    "created_at": "created_at",
}
ACCOUNT_TRAITS = {
    "name": "name",
    "plan": "plan",
    "mrr": "mrr",
    "touch": "touch",
    "createdAt": "signed_up_at",
    "created_at": "signed_up_at",
    "renewalDate": "renewal_date",
    "renewal_date": "renewal_date",
}


class InvalidCall(errors.EngagementError, ValueError):
    """A call whose values do not fit our records; `loc` names the field."""

    def __init__(self, loc: list[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass
class Known:
    """What the store holds for the people and accounts a batch names."""

    contacts: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # id → (account, traits)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → traits


@dataclass
class Plan:
    """The writes one batch comes to."""

    accounts: list[AccountIn] = field(default_factory=list)
    contacts: list[ContactIn] = field(default_factory=list)
    events: list[EventIn] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)  # contact → account it joins from no account yet
    mrr_at: dict[str, datetime] = field(
        default_factory=dict
    )  # account → time of the last call giving its mrr
    needs_unassigned: bool = False
    skipped: int = 0


def plan(calls: list[tuple[list[str | int], Call]], known: Known, now: datetime, unassigned: str) -> Plan:
    """Fold the calls, in order, into final account and contact rows and new events.

    Each call comes with its location in the request (e.g. `["batch", 3]`) for error messages.
    """
    accounts: dict[str, dict[str, Any]] = {}
    contacts: dict[str, dict[str, Any]] = {}
    events: list[EventIn] = []
    mrr_at: dict[str, datetime] = {}
    skipped = 0

    def contact(user: str) -> dict[str, Any]:
        if user not in contacts:
            account, traits = known.contacts.get(user, (None, None))
            contacts[user] = {"id": user, "account_id": account, "_traits": traits, "_was": account}
        return contacts[user]

    def account(account_id: str) -> dict[str, Any]:
        if account_id not in accounts:
            accounts[account_id] = {"id": account_id, "_traits": known.accounts.get(account_id)}
        return accounts[account_id]

    for loc, call in calls:
        at = call.timestamp or now
        if isinstance(call, Group):
            row = account(call.groupId)
            _merge(row, call.traits, ACCOUNT_TRAITS, _check_account, [*loc, "traits"])
            if "mrr" in call.traits:
                mrr_at[call.groupId] = at
            if call.userId is not None:
                contact(call.userId)["account_id"] = call.groupId
            continue
        if call.userId is None or isinstance(call, Alias):
            skipped += 1  # anonymous: no contact to attach it to
            continue
        if isinstance(call, Identify):
            traits = dict(call.traits)
            company = traits.pop("company", None)
            if "timezone" not in traits and isinstance(call.context.get("timezone"), str):
                traits["timezone"] = call.context["timezone"]
            row = contact(call.userId)
            _merge(row, traits, CONTACT_TRAITS, _check_contact, [*loc, "traits"])
            if isinstance(company, dict) and company.get("id") is not None:
                company_id = _id(company["id"])
                if not isinstance(company_id, str) or not company_id:
                    raise InvalidCall([*loc, "traits", "company", "id"], "must be a string")
                wrong = values.id_problem(company_id)
                if wrong is not None:
                    raise InvalidCall([*loc, "traits", "company", "id"], wrong)
                rest = {k: v for k, v in company.items() if k != "id"}
                _merge(account(company_id), rest, ACCOUNT_TRAITS, _check_account, [*loc, "traits", "company"])
                if "mrr" in rest:
                    mrr_at[company_id] = at
                row["account_id"] = company_id
        elif isinstance(call, Track):
            events.append(_event(call.messageId, call.userId, call.event, at, call.properties))
        elif isinstance(call, Page):
            extra = {k: v for k, v in (("name", call.name), ("category", call.category)) if v is not None}
            events.append(
                _event(call.messageId, call.userId, f"{call.type}_viewed", at, {**call.properties, **extra})
            )

    result = Plan(events=events, mrr_at=mrr_at, skipped=skipped)
    for row in accounts.values():
        traits = row.pop("_traits")
        if "traits" in row:
            row["traits"] = {**(traits or {}), **row["traits"]}
        result.accounts.append(AccountIn.model_validate(row))
    for row in contacts.values():
        traits, was = row.pop("_traits"), row.pop("_was")
        if "traits" in row:
            row["traits"] = {**(traits or {}), **row["traits"]}
        if row["account_id"] is None:
            row["account_id"] = unassigned
            result.needs_unassigned = True
        elif row["account_id"] != unassigned and (was is None or was == unassigned):
            result.moved[row["id"]] = row["account_id"]
        result.contacts.append(ContactIn.model_validate(row))
    return result


def _merge(
    row: dict[str, Any], traits: dict[str, Any], columns: dict[str, str], check: Any, loc: list[str | int]
) -> None:
    """Copy traits that have a column onto `row` (validated), the rest into `row["traits"]`."""
    given: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key, value in traits.items():
        if key in columns:
            given[columns[key]] = value
            origin[columns[key]] = key
        else:
            rest[key] = value
    if given:
        try:
            checked = check(row["id"], given)
        except ValidationError as exc:
            error = exc.errors()[0]
            column = str(error["loc"][0]) if error["loc"] else ""
            raise InvalidCall([*loc, origin.get(column, column)], error["msg"]) from exc
        row.update(checked)
    if rest or "traits" not in row:
        row["traits"] = {**row.get("traits", {}), **rest}


def _check_contact(contact_id: str, given: dict[str, Any]) -> dict[str, Any]:
    checked = ContactIn.model_validate({"id": contact_id, "account_id": "-", **given})
    return {name: getattr(checked, name) for name in given}


def _check_account(account_id: str, given: dict[str, Any]) -> dict[str, Any]:
    checked = AccountIn.model_validate({"id": account_id, **given})
    return {name: getattr(checked, name) for name in given}


def _event(message_id: str | None, user: str, name: str, at: datetime, properties: dict[str, Any]) -> EventIn:
    # every field was validated by the call's own model (ids and names capped, timestamp in UTC)
    return EventIn.model_construct(
        id=message_id, contact_id=user, name=name, timestamp=at, properties=properties
    )
