"""Parsing conditions: every form into its AST node, every mistake to the right sub-path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engagement.conditions import ast
from engagement.conditions.parse import Parser, parse

FORMS: list[tuple[str, str, Any, ast.Condition]] = [
    ("bare value is eq", "contact", {"account.plan": "pro"}, ast.Attr("account", ("plan",), "eq", "pro")),
    ("eq", "contact", {"contact.role": {"eq": "admin"}}, ast.Attr("contact", ("role",), "eq", "admin")),
    ("ne", "contact", {"contact.role": {"ne": "admin"}}, ast.Attr("contact", ("role",), "ne", "admin")),
    (
        "in",
        "contact",
        {"contact.role": {"in": ["admin", "owner"]}},
        ast.Attr("contact", ("role",), "in", ("admin", "owner")),
    ),
    (
        "not_in",
        "contact",
        {"account.plan": {"not_in": ["free"]}},
        ast.Attr("account", ("plan",), "not_in", ("free",)),
    ),
    ("lt on a number", "contact", {"account.mrr": {"lt": 100}}, ast.Attr("account", ("mrr",), "lt", 100.0)),
    ("lte", "contact", {"account.mrr": {"lte": 99.5}}, ast.Attr("account", ("mrr",), "lte", 99.5)),
    ("gt", "contact", {"account.mrr": {"gt": 0}}, ast.Attr("account", ("mrr",), "gt", 0.0)),
    ("gte", "contact", {"account.mrr": {"gte": 1000}}, ast.Attr("account", ("mrr",), "gte", 1000.0)),
    (
        "exists",
        "contact",
        {"contact.email": {"exists": False}},
        ast.Attr("contact", ("email",), "exists", False),
    ),
    (
        "contains",
        "contact",
        {"contact.email": {"contains": "@acme"}},
        ast.Attr("contact", ("email",), "contains", "@acme"),
    ),
    (
        "datetime compare in UTC",
        "contact",
        {"contact.created_at": {"gte": "2026-03-01T10:00:00+02:00"}},
        ast.Attr("contact", ("created_at",), "gte", datetime(2026, 3, 1, 8, tzinfo=UTC)),
    ),
    (
        "date compare",
        "account",
        {"account.renewal_date": {"lt": "2026-06-01"}},
        ast.Attr("account", ("renewal_date",), "lt", date(2026, 6, 1)),
    ),
    (
        "trait number",
        "contact",
        {"contact.traits.seats": {"gte": 5}},
        ast.Attr("contact", ("traits", "seats"), "gte", 5.0),
    ),
    (
        "trait bool stays bool",
        "contact",
        {"contact.traits.beta": True},
        ast.Attr("contact", ("traits", "beta"), "eq", True),
    ),
    (
        "trait text stays text",
        "account",
        {"account.traits.tier": {"in": ["5", 5]}},
        ast.Attr("account", ("traits", "tier"), "in", ("5", 5.0)),
    ),
    (
        "nested trait",
        "contact",
        {"contact.traits.billing.country": "DE"},
        ast.Attr("contact", ("traits", "billing", "country"), "eq", "DE"),
    ),
    (
        "several operators mean all",
        "contact",
        {"account.mrr": {"gte": 100, "lt": 500}},
        ast.All((ast.Attr("account", ("mrr",), "gte", 100.0), ast.Attr("account", ("mrr",), "lt", 500.0))),
    ),
    ("milestone", "contact", {"milestone": "first_login"}, ast.Milestone("first_login")),
    (
        "milestone within",
        "contact",
        {"milestone": "first_login", "within": "7d"},
        ast.Milestone("first_login", timedelta(days=7)),
    ),
    (
        "event_count within",
        "contact",
        {"event_count": {"event": "active_day", "within": "14d", "lt": 3}},
        ast.EventCount("active_day", timedelta(days=14), (("lt", 3.0),)),
    ),
    (
        "event_count ever, two bounds",
        "account",
        {"event_count": {"event": "login", "gte": 1, "ne": 4}},
        ast.EventCount("login", None, (("gte", 1.0), ("ne", 4.0))),
    ),
    (
        "days_since",
        "contact",
        {"days_since": {"field": "contact.created_at", "gte": 7}},
        ast.Days("since", "contact.created_at", (("gte", 7.0),)),
    ),
    (
        "days_until",
        "account",
        {"days_until": {"field": "account.renewal_date", "lte": 60, "gte": 0}},
        ast.Days("until", "account.renewal_date", (("lte", 60.0), ("gte", 0.0))),
    ),
    ("score of a contact", "contact", {"score": {"lt": 30}}, ast.Score("contact", (("lt", 30.0),))),
    ("score of an account", "account", {"score": {"gt": 12.5}}, ast.Score("account", (("gt", 12.5),))),
    ("account_score", "contact", {"account_score": {"lt": 30}}, ast.Score("account", (("lt", 30.0),))),
    ("health of a contact", "contact", {"health": "red"}, ast.Health("contact", "red")),
    ("health of an account", "account", {"health": "green"}, ast.Health("account", "green")),
    (
        "all",
        "contact",
        {"all": [{"milestone": "a"}, {"health": "yellow"}]},
        ast.All((ast.Milestone("a"), ast.Health("contact", "yellow"))),
    ),
    (
        "any",
        "contact",
        {"any": [{"milestone": "a"}, {"milestone": "b"}]},
        ast.AnyOf((ast.Milestone("a"), ast.Milestone("b"))),
    ),
    ("not", "contact", {"not": {"milestone": "a"}}, ast.Not(ast.Milestone("a"))),
    (
        "several keys mean all",
        "contact",
        {"milestone": "a", "within": "2w", "account.plan": "pro"},
        ast.All((ast.Milestone("a", timedelta(weeks=2)), ast.Attr("account", ("plan",), "eq", "pro"))),
    ),
    (
        "stalled time-to-value",
        "contact",
        {"all": [{"days_since": {"field": "contact.created_at", "gte": 7}}, {"not": {"milestone": "x"}}]},
        ast.All((ast.Days("since", "contact.created_at", (("gte", 7.0),)), ast.Not(ast.Milestone("x")))),
    ),
]


@pytest.mark.parametrize(("audience", "raw", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS])
def test_each_form_parses_into_its_ast_node(audience: ast.Scope, raw: Any, expected: ast.Condition) -> None:
    assert parse(raw, audience) == expected


MISTAKES: list[tuple[str, str, Any, tuple[str | int, ...]]] = [
    ("unknown key", "contact", {"milestones": "x"}, ("milestones",)),
    ("unknown operator", "contact", {"contact.role": {"like": "adm"}}, ("contact.role", "like")),
    ("bad milestone duration", "contact", {"milestone": "a", "within": "7 days"}, ("within",)),
    (
        "bad event_count duration",
        "contact",
        {"event_count": {"event": "a", "within": "2 weeks", "lt": 3}},
        ("event_count", "within"),
    ),
    ("duration too long", "contact", {"milestone": "a", "within": "9999999999d"}, ("within",)),
    ("text bound", "contact", {"score": {"lt": "thirty"}}, ("score", "lt")),
    ("bool bound", "contact", {"event_count": {"event": "a", "gte": True}}, ("event_count", "gte")),
    ("NaN bound", "contact", {"score": {"lt": float("nan")}}, ("score", "lt")),
    ("infinite bound", "contact", {"event_count": {"event": "a", "lt": float("inf")}}, ("event_count", "lt")),
    ("NaN value", "contact", {"account.mrr": {"ne": float("nan")}}, ("account.mrr", "ne")),
    (
        "fractional day bound",
        "contact",
        {"days_since": {"field": "contact.created_at", "gte": 1.5}},
        ("days_since", "gte"),
    ),
    ("bound op unknown", "contact", {"account_score": {"below": 3}}, ("account_score", "below")),
    ("no bound at all", "contact", {"score": {}}, ("score",)),
    ("contact field in an account audience", "account", {"contact.role": "admin"}, ("contact.role",)),
    (
        "contact date in an account audience",
        "account",
        {"days_since": {"field": "contact.created_at", "gte": 1}},
        ("days_since", "field"),
    ),
    ("lt with a string", "contact", {"account.plan": {"lt": "pro"}}, ("account.plan", "lt")),
    (
        "lt with a string trait",
        "contact",
        {"contact.traits.seats": {"lt": "5"}},
        ("contact.traits.seats", "lt"),
    ),
    ("number for a text field", "contact", {"contact.role": 5}, ("contact.role",)),
    (
        "contains on a number field",
        "contact",
        {"account.mrr": {"contains": "1"}},
        ("account.mrr", "contains"),
    ),
    ("empty in", "contact", {"contact.role": {"in": []}}, ("contact.role", "in")),
    ("not a date", "account", {"account.renewal_date": {"lt": "soon"}}, ("account.renewal_date", "lt")),
    ("empty all", "contact", {"all": []}, ("all",)),
    ("empty any", "contact", {"any": []}, ("any",)),
    ("within without milestone", "contact", {"within": "7d"}, ("within",)),
    (
        "unknown date field",
        "contact",
        {"days_since": {"field": "contact.last_seen", "gte": 1}},
        ("days_since", "field"),
    ),
    ("unknown field", "contact", {"contact.plan": "pro"}, ("contact.plan",)),
    ("unnamed trait", "contact", {"contact.traits": "x"}, ("contact.traits",)),
    ("unknown band", "contact", {"health": "blue"}, ("health",)),
    ("event_count without event", "contact", {"event_count": {"lt": 3}}, ("event_count", "event")),
    ("not a mapping", "contact", ["milestone", "a"], ()),
    (
        "nested",
        "contact",
        {"all": [{"milestone": "a"}, {"not": {"health": "blue"}}]},
        ("all", 1, "not", "health"),
    ),
]


@pytest.mark.parametrize(("audience", "raw", "path"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_reported_at_its_sub_path(
    audience: ast.Scope, raw: Any, path: tuple[str | int, ...]
) -> None:
    parser = Parser(audience)
    assert parser.parse(raw) is None
    assert [p for p, _ in parser.problems] == [path]


def test_every_problem_in_one_condition_is_reported_together() -> None:
    parser = Parser("contact")
    raw = {
        "all": [
            {"contact.role": {"like": "x"}},
            {"milestone": "ok"},
            {"any": [{"score": {"lt": "low"}}, {"any": []}]},
        ],
        "milestones": "x",
        "within": "7d",
    }
    assert parser.parse(raw) is None
    assert [p for p, _ in parser.problems] == [
        ("within",),
        ("all", 0, "contact.role", "like"),
        ("all", 2, "any", 0, "score", "lt"),
        ("all", 2, "any", 1, "any"),
        ("milestones",),
    ]


def test_parse_raises_one_error_naming_every_problem() -> None:
    with pytest.raises(ValueError, match=r"all\.1\.not\.health: .*; milestones: unknown condition"):
        parse({"all": [{"milestone": "a"}, {"not": {"health": "blue"}}], "milestones": "x"})


def test_problem_messages_say_how_to_fix_the_mistake() -> None:
    parser = Parser("account")
    parser.parse({"contact.role": "admin", "account.plan": {"lt": "pro"}, "account.mrr": {"like": 1}})
    messages = [m for _, m in parser.problems]
    assert len(messages) == 3
    assert "recipients" in messages[0]
    assert "numbers or dates" in messages[1]
    assert "unknown operator 'like'" in messages[2]
