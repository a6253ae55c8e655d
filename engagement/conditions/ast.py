"""The condition AST: small frozen nodes, one per form of the journey language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

Scope = Literal["contact", "account"]
Bound = tuple[str, float]  # (op, number), op in eq ne lt lte gt gte

CONTACT_FIELDS = {
    "id": str,
    "email": str,
    "first_name": str,
    "last_name": str,
    "role": str,
    "timezone": str,
    "created_at": "datetime",
}
ACCOUNT_FIELDS = {
    "id": str,
    "name": str,
    "plan": str,
    "mrr": float,
    "touch": str,
    "signed_up_at": "datetime",
    "renewal_date": "date",
}
TIME_FIELDS = {
    "contact.created_at": "datetime",
    "account.signed_up_at": "datetime",
    "account.renewal_date": "date",
}
BANDS = ("green", "yellow", "red")


@dataclass(frozen=True)
class Attr:
    """Compare a contact or account attribute, or a trait under `traits.`."""

    scope: Scope
    path: tuple[str, ...]  # ("plan",) or ("traits", "seats")
    op: str
    value: Any

    @property
    def is_trait(self) -> bool:
        return self.path[0] == "traits"


@dataclass(frozen=True)
class Milestone:
    """The subject reached a milestone (optionally within a recent window)."""

    name: str
    within: timedelta | None = None


@dataclass(frozen=True)
class EventCount:
    """How often an event happened for the subject, optionally within a window."""

    event: str
    within: timedelta | None
    bounds: tuple[Bound, ...]


@dataclass(frozen=True)
class Days:
    """Whole days since (or until) a timestamp or date field."""

    direction: Literal["since", "until"]
    field: str  # key of TIME_FIELDS
    bounds: tuple[Bound, ...]


@dataclass(frozen=True)
class Score:
    """The decayed engagement score of the contact or of its account."""

    scope: Scope
    bounds: tuple[Bound, ...]


@dataclass(frozen=True)
class Health:
    """The health band of the subject's score."""

    scope: Scope
    band: str


@dataclass(frozen=True)
class HealthScore:
    """The account's scorecard score (0 to 100) is in bounds; an account without a score matches nothing."""

    bounds: tuple[Bound, ...]


@dataclass(frozen=True)
class HealthChange:
    """The account's scorecard score now minus its daily snapshot `within` ago is in bounds."""

    within: timedelta
    bounds: tuple[Bound, ...]


@dataclass(frozen=True)
class Survey:
    """The contact's latest answer to a survey of `kind` (within a recent window) has a score in bounds."""

    kind: str  # a vocab.SurveyKind
    within: timedelta | None
    bounds: tuple[Bound, ...]  # empty: any answer


@dataclass(frozen=True)
class All:
    """Every part holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The part does not hold."""

    item: Condition


Condition = (
    Attr
    | Milestone
    | EventCount
    | Days
    | Score
    | Health
    | HealthScore
    | HealthChange
    | Survey
    | All
    | AnyOf
    | Not
)


def walk(cond: Condition) -> list[Condition]:
    """Every node of a condition, depth first."""
    nodes: list[Condition] = [cond]
    if isinstance(cond, All | AnyOf):
        for item in cond.items:
            nodes.extend(walk(item))
    elif isinstance(cond, Not):
        nodes.extend(walk(cond.item))
    return nodes


def check_bound(op: str, actual: float, expected: float) -> bool:
    """Apply one comparison operator."""
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "lt":
        return actual < expected
    if op == "lte":
        return actual <= expected
    if op == "gt":
        return actual > expected
    return actual >= expected
