"""Each condition form on a hand-built world: SQL and Python both pick exactly the expected subjects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from backends import url_for
from condition_world import (
    NOW,
    World,
    account,
    account_reached,
    account_score,
    answer,
    contact,
    contact_score,
    drop_database,
    event,
    open_database,
    pure_ids,
    reached,
    sql_ids,
    store,
)

from engagement.conditions.context import EvalContext
from engagement.conditions.parse import parse
from engagement.store.database import Database

D = timedelta(days=1)
US = timedelta(microseconds=1)
CONTACT = EvalContext(NOW, "contact")
ACCOUNT = EvalContext(NOW, "account")

ATTRS = World(
    accounts=[
        account("a1", name="Acme", plan="pro", mrr=100.0, renewal_date=date(2026, 4, 1),
                traits={"tier": "gold", "seats": 10}),
        account("a2", name="Beta", plan="Pro", mrr=50.5, renewal_date=date(2026, 3, 10),
                traits={"seats": "10"}),
        account("a3", name="Cmd", plan=None, mrr=0.0),
    ],
    contacts=[
        contact("c1", "a1", role="admin", email="ann@acme.io", created_at=NOW - 10 * D,
                traits={"seats": 5, "tag": "Beta-user", "vip": True, "gone": None}),
        contact("c2", "a1", role="Admin", created_at=NOW - D,
                traits={"seats": "5", "tag": "beta", "vip": 1}),
        contact("c3", "a2", role="member", email="bo@beta.io",
                traits={"seats": 5.5, "vip": False, "gone": None}),
        contact("c4", "a3", email="cy@acme.io", created_at=NOW - 40 * D),
        contact("c5", "a3", role="admin", email="", created_at=NOW,
                traits={"seats": 3, "tag": "alphabeta", "plan": {"name": "pro"}, "list": ["pro"]}),
    ],
)  # fmt: skip

MILESTONES = World(
    accounts=[account(a) for a in ("a1", "a2", "a3", "a4")],
    contacts=[contact(c, "a4") for c in ("c1", "c2", "c3", "c4", "c5", "c6")],
    milestones=[
        reached("c1", "onboarded", NOW - 3 * D),
        reached("c2", "onboarded", NOW - 10 * D),
        reached("c3", "onboarded", NOW + timedelta(hours=1)),  # not yet
        reached("c4", "other", NOW - D),
        reached("c5", "onboarded", NOW),  # exactly now counts
        reached("c6", "onboarded", NOW - 7 * D),  # exactly the window's start does not
    ],
    account_milestones=[
        account_reached("a1", "onboarded", NOW - D),
        account_reached("a2", "onboarded", NOW - 8 * D),
        account_reached("a3", "onboarded", NOW + timedelta(seconds=1)),
    ],
)

EVENTS = World(
    accounts=[account(a) for a in ("a1", "a2", "a3")],
    contacts=[contact("c1", "a1"), contact("c2", "a1"), contact("c3", "a2")]
    + [contact(c, "a3") for c in ("c4", "c5", "c6")],
    events=[
        event("c1", "login", NOW - D, "a1"),
        event("c1", "login", NOW - 2 * D, "a1"),
        event("c1", "login", NOW - 20 * D, "a1"),
        event("c2", "login", NOW - timedelta(hours=1), "a1"),
        event("c3", "login", NOW + timedelta(hours=1), "a2"),  # in the future
        event("c3", "login", NOW - 14 * D, "a2"),  # exactly the window's start
        event("c5", "logout", NOW - D, "a3"),
        event("c6", "login", NOW),  # exactly now, and without an account
    ],
)
# login counts, ever: c1 3, c2 1, c3 1, c4 0, c5 0, c6 1; within 14d: c1 2, c2 1, c6 1, others 0
# per account, ever: a1 4, a2 1, a3 0; within 14d: a1 3, a2 0, a3 0

CREATED = World(
    accounts=[account("a1", renewal_date=date(2026, 3, 11))],
    contacts=[
        contact("c1", created_at=NOW - 7 * D),  # 7 whole days ago
        contact("c2", created_at=NOW - 7 * D + US),  # 6
        contact("c3", created_at=NOW - 8 * D + US),  # 7
        contact("c4", created_at=None),
        contact("c5", created_at=NOW - 8 * D),  # 8
        contact("c6", created_at=NOW + US),  # -1
    ],
)

SIGNUPS = World(
    accounts=[
        account("a1", signed_up_at=NOW + 3 * D),  # 3 whole days until
        account("a2", signed_up_at=NOW + 3 * D - US),  # 2
        account("a3", signed_up_at=NOW + 4 * D - US),  # 3
        account("a4", signed_up_at=NOW - US),  # -1 (and 0 days since)
        account("a5", signed_up_at=NOW),  # 0
        account("a6", signed_up_at=None),
    ]
)

RENEWALS = World(  # NOW is 2026-03-10 12:00 UTC
    accounts=[
        account("a1", renewal_date=date(2026, 3, 10)),  # today: 0 days until
        account("a2", renewal_date=date(2026, 5, 9)),  # 60
        account("a3", renewal_date=date(2026, 5, 10)),  # 61
        account("a4", renewal_date=date(2026, 3, 9)),  # -1 (1 day since)
        account("a5", renewal_date=None),
        account("a6", renewal_date=date(2026, 3, 11)),  # 1 calendar day, though only 12 hours away
    ],
    contacts=[contact("c1", "a1"), contact("c2", "a4"), contact("c3", "a5"), contact("c6", "a6")],
)

SCORES = World(  # half-life 14 days, green >= 60, yellow >= 30
    accounts=[account(a) for a in ("a1", "a2", "a3", "a4")],
    contacts=[contact("c1", "a1"), contact("c2", "a1"), contact("c3", "a2"), contact("c4", "a2")]
    + [contact(c, "a3") for c in ("c5", "c6", "c7")],
    contact_scores=[
        contact_score("c1", 80.0, NOW),  # 80
        contact_score("c2", 80.0, NOW - 14 * D),  # 40
        contact_score("c3", 80.0, NOW - 28 * D),  # 20
        # c4 has no score: 0
        contact_score("c5", 60.0, NOW),  # 60
        contact_score("c6", 120.0, NOW - 14 * D),  # 60
        contact_score("c7", -5.0, NOW),  # -5
    ],
    account_scores=[
        account_score("a1", 50.0, NOW - 14 * D),  # 25
        account_score("a2", 30.0, NOW),  # 30
        # a3 has no score: 0
        account_score("a4", 90.0, NOW - 7 * D),  # 63.6
    ],
)


def case(name: str, data: World, ctx: EvalContext, raw: Any, expected: set[str]) -> Any:
    return pytest.param(data, ctx, raw, expected, id=name)


CASES = [
    # attribute compares on plain columns (contact audience)
    case("role eq", ATTRS, CONTACT, {"contact.role": {"eq": "admin"}}, {"c1", "c5"}),
    case("role bare value", ATTRS, CONTACT, {"contact.role": "Admin"}, {"c2"}),
    case("role ne (missing counts)", ATTRS, CONTACT, {"contact.role": {"ne": "admin"}}, {"c2", "c3", "c4"}),
    case("role in", ATTRS, CONTACT, {"contact.role": {"in": ["admin", "member"]}}, {"c1", "c3", "c5"}),
    case("role not_in", ATTRS, CONTACT, {"contact.role": {"not_in": ["admin", "member"]}}, {"c2", "c4"}),
    case("mrr lt", ATTRS, CONTACT, {"account.mrr": {"lt": 50.5}}, {"c4", "c5"}),
    case("mrr lte", ATTRS, CONTACT, {"account.mrr": {"lte": 50.5}}, {"c3", "c4", "c5"}),
    case("mrr gt", ATTRS, CONTACT, {"account.mrr": {"gt": 50.5}}, {"c1", "c2"}),
    case("mrr gte", ATTRS, CONTACT, {"account.mrr": {"gte": 50.5}}, {"c1", "c2", "c3"}),
    case("mrr two ops", ATTRS, CONTACT, {"account.mrr": {"gt": 0, "lt": 100}}, {"c3"}),
    case("email exists", ATTRS, CONTACT, {"contact.email": {"exists": True}}, {"c1", "c3", "c4", "c5"}),
    case("email missing", ATTRS, CONTACT, {"contact.email": {"exists": False}}, {"c2"}),
    case("email contains", ATTRS, CONTACT, {"contact.email": {"contains": "acme"}}, {"c1", "c4"}),
    case("contains is case-sensitive", ATTRS, CONTACT, {"contact.role": {"contains": "Adm"}}, {"c2"}),
    case(
        "created_at lt", ATTRS, CONTACT, {"contact.created_at": {"lt": "2026-03-09T12:00:00Z"}}, {"c1", "c4"}
    ),
    case(
        "created_at lte",
        ATTRS,
        CONTACT,
        {"contact.created_at": {"lte": "2026-03-09T12:00:00Z"}},
        {"c1", "c2", "c4"},
    ),
    case(
        "created_at eq in another zone",
        ATTRS,
        CONTACT,
        {"contact.created_at": "2026-03-09T13:00:00+01:00"},
        {"c2"},
    ),
    case(
        "created_at ne (missing counts)",
        ATTRS,
        CONTACT,
        {"contact.created_at": {"ne": "2026-03-09T12:00:00Z"}},
        {"c1", "c3", "c4", "c5"},
    ),
    case("renewal_date eq", ATTRS, CONTACT, {"account.renewal_date": "2026-03-10"}, {"c3"}),
    case(
        "renewal_date gte",
        ATTRS,
        CONTACT,
        {"account.renewal_date": {"gte": "2026-03-10"}},
        {"c1", "c2", "c3"},
    ),
    # attribute compares on traits: type-strict
    case("trait eq number", ATTRS, CONTACT, {"contact.traits.seats": 5}, {"c1"}),
    case("trait eq text", ATTRS, CONTACT, {"contact.traits.seats": "5"}, {"c2"}),
    case("trait ne", ATTRS, CONTACT, {"contact.traits.seats": {"ne": 5}}, {"c2", "c3", "c4", "c5"}),
    case("trait in", ATTRS, CONTACT, {"contact.traits.seats": {"in": [5, 5.5]}}, {"c1", "c3"}),
    case("trait not_in", ATTRS, CONTACT, {"contact.traits.seats": {"not_in": [5, "5"]}}, {"c3", "c4", "c5"}),
    case("trait lt", ATTRS, CONTACT, {"contact.traits.seats": {"lt": 5}}, {"c5"}),
    case("trait lte", ATTRS, CONTACT, {"contact.traits.seats": {"lte": 5}}, {"c1", "c5"}),
    case("trait gt", ATTRS, CONTACT, {"contact.traits.seats": {"gt": 5}}, {"c3"}),
    case("trait gte", ATTRS, CONTACT, {"contact.traits.seats": {"gte": 5}}, {"c1", "c3"}),
    case(
        "trait exists", ATTRS, CONTACT, {"contact.traits.seats": {"exists": True}}, {"c1", "c2", "c3", "c5"}
    ),
    case("trait null does not exist", ATTRS, CONTACT, {"contact.traits.gone": {"exists": True}}, set()),
    case(
        "trait null is missing",
        ATTRS,
        CONTACT,
        {"contact.traits.gone": {"exists": False}},
        {"c1", "c2", "c3", "c4", "c5"},
    ),
    case("trait contains", ATTRS, CONTACT, {"contact.traits.tag": {"contains": "beta"}}, {"c2", "c5"}),
    case("trait true is not 1", ATTRS, CONTACT, {"contact.traits.vip": True}, {"c1"}),
    case("trait 1 is not true", ATTRS, CONTACT, {"contact.traits.vip": 1}, {"c2"}),
    case("trait false", ATTRS, CONTACT, {"contact.traits.vip": False}, {"c3"}),
    case("trait ne true", ATTRS, CONTACT, {"contact.traits.vip": {"ne": True}}, {"c2", "c3", "c4", "c5"}),
    case("nested trait", ATTRS, CONTACT, {"contact.traits.plan.name": "pro"}, {"c5"}),
    case(
        "a trait path never indexes a list",
        ATTRS,
        CONTACT,
        {"contact.traits.list.0": {"exists": True}},
        set(),
    ),
    case("account trait number", ATTRS, CONTACT, {"account.traits.seats": 10}, {"c1", "c2"}),
    case("account trait text", ATTRS, CONTACT, {"account.traits.seats": "10"}, {"c3"}),
    # attribute compares, account audience
    case("account plan eq", ATTRS, ACCOUNT, {"account.plan": "pro"}, {"a1"}),
    case("account plan ne", ATTRS, ACCOUNT, {"account.plan": {"ne": "pro"}}, {"a2", "a3"}),
    case("account plan in", ATTRS, ACCOUNT, {"account.plan": {"in": ["pro", "Pro"]}}, {"a1", "a2"}),
    case("account name contains", ATTRS, ACCOUNT, {"account.name": {"contains": "cm"}}, {"a1"}),
    case("account mrr gte", ATTRS, ACCOUNT, {"account.mrr": {"gte": 50.5}}, {"a1", "a2"}),
    case("account trait exists", ATTRS, ACCOUNT, {"account.traits.tier": {"exists": True}}, {"a1"}),
    # milestones
    case("milestone", MILESTONES, CONTACT, {"milestone": "onboarded"}, {"c1", "c2", "c5", "c6"}),
    case("milestone within", MILESTONES, CONTACT, {"milestone": "onboarded", "within": "7d"}, {"c1", "c5"}),
    case(
        "milestone within reaching before year 1",
        MILESTONES,
        CONTACT,
        {"milestone": "onboarded", "within": "1000000d"},
        {"c1", "c2", "c5", "c6"},
    ),
    case("not milestone", MILESTONES, CONTACT, {"not": {"milestone": "onboarded"}}, {"c3", "c4"}),
    case("account milestone", MILESTONES, ACCOUNT, {"milestone": "onboarded"}, {"a1", "a2"}),
    case("account milestone within", MILESTONES, ACCOUNT, {"milestone": "onboarded", "within": "7d"}, {"a1"}),
    # event counts
    case(
        "events eq",
        EVENTS,
        CONTACT,
        {"event_count": {"event": "login", "within": "14d", "eq": 1}},
        {"c2", "c6"},
    ),
    case(
        "events ne",
        EVENTS,
        CONTACT,
        {"event_count": {"event": "login", "within": "14d", "ne": 0}},
        {"c1", "c2", "c6"},
    ),
    case(
        "events lt",
        EVENTS,
        CONTACT,
        {"event_count": {"event": "login", "within": "14d", "lt": 1}},
        {"c3", "c4", "c5"},
    ),
    case(
        "events lte",
        EVENTS,
        CONTACT,
        {"event_count": {"event": "login", "within": "14d", "lte": 1}},
        {"c2", "c3", "c4", "c5", "c6"},
    ),
    case("events gt", EVENTS, CONTACT, {"event_count": {"event": "login", "within": "14d", "gt": 1}}, {"c1"}),
    case(
        "events gte", EVENTS, CONTACT, {"event_count": {"event": "login", "within": "14d", "gte": 2}}, {"c1"}
    ),
    case(
        "events ever",
        EVENTS,
        CONTACT,
        {"event_count": {"event": "login", "gte": 1}},
        {"c1", "c2", "c3", "c6"},
    ),
    case("events ever eq", EVENTS, CONTACT, {"event_count": {"event": "login", "eq": 3}}, {"c1"}),
    case(
        "events ever two bounds",
        EVENTS,
        CONTACT,
        {"event_count": {"event": "login", "gte": 1, "lt": 3}},
        {"c2", "c3", "c6"},
    ),
    case(
        "account events",
        EVENTS,
        ACCOUNT,
        {"event_count": {"event": "login", "within": "14d", "gte": 3}},
        {"a1"},
    ),
    case("account events ever", EVENTS, ACCOUNT, {"event_count": {"event": "login", "gte": 1}}, {"a1", "a2"}),
    case(
        "account events none",
        EVENTS,
        ACCOUNT,
        {"event_count": {"event": "login", "within": "14d", "eq": 0}},
        {"a2", "a3"},
    ),
    # days since a datetime, at the whole-day boundaries
    case(
        "since gte",
        CREATED,
        CONTACT,
        {"days_since": {"field": "contact.created_at", "gte": 7}},
        {"c1", "c3", "c5"},
    ),
    case("since gt", CREATED, CONTACT, {"days_since": {"field": "contact.created_at", "gt": 7}}, {"c5"}),
    case(
        "since lt", CREATED, CONTACT, {"days_since": {"field": "contact.created_at", "lt": 7}}, {"c2", "c6"}
    ),
    case(
        "since lte",
        CREATED,
        CONTACT,
        {"days_since": {"field": "contact.created_at", "lte": 7}},
        {"c1", "c2", "c3", "c6"},
    ),
    case(
        "since eq", CREATED, CONTACT, {"days_since": {"field": "contact.created_at", "eq": 7}}, {"c1", "c3"}
    ),
    case(
        "since ne (missing never matches)",
        CREATED,
        CONTACT,
        {"days_since": {"field": "contact.created_at", "ne": 7}},
        {"c2", "c5", "c6"},
    ),
    case(
        "since negative", CREATED, CONTACT, {"days_since": {"field": "contact.created_at", "lt": 0}}, {"c6"}
    ),
    case(
        "since bound before year 1",
        CREATED,
        CONTACT,
        {"days_since": {"field": "contact.created_at", "lt": 1000000}},
        {"c1", "c2", "c3", "c5", "c6"},
    ),
    case(
        "since bound past year 9999",
        CREATED,
        CONTACT,
        {"days_since": {"field": "contact.created_at", "gt": 10**20}},
        set(),
    ),
    # days until (and since) a datetime, account audience
    case(
        "until eq", SIGNUPS, ACCOUNT, {"days_until": {"field": "account.signed_up_at", "eq": 3}}, {"a1", "a3"}
    ),
    case(
        "until gte",
        SIGNUPS,
        ACCOUNT,
        {"days_until": {"field": "account.signed_up_at", "gte": 3}},
        {"a1", "a3"},
    ),
    case(
        "until lt",
        SIGNUPS,
        ACCOUNT,
        {"days_until": {"field": "account.signed_up_at", "lt": 3}},
        {"a2", "a4", "a5"},
    ),
    case(
        "until lte",
        SIGNUPS,
        ACCOUNT,
        {"days_until": {"field": "account.signed_up_at", "lte": 0}},
        {"a4", "a5"},
    ),
    case(
        "until gt",
        SIGNUPS,
        ACCOUNT,
        {"days_until": {"field": "account.signed_up_at", "gt": -1}},
        {"a1", "a2", "a3", "a5"},
    ),
    case(
        "until ne",
        SIGNUPS,
        ACCOUNT,
        {"days_until": {"field": "account.signed_up_at", "ne": 3}},
        {"a2", "a4", "a5"},
    ),
    case(
        "until bound past year 9999",
        SIGNUPS,
        ACCOUNT,
        {"days_until": {"field": "account.signed_up_at", "lt": 10**7}},
        {"a1", "a2", "a3", "a4", "a5"},
    ),
    case(
        "since a signup",
        SIGNUPS,
        ACCOUNT,
        {"days_since": {"field": "account.signed_up_at", "gte": 0}},
        {"a4", "a5"},
    ),
    # calendar days on the date field
    case(
        "renewal window",
        RENEWALS,
        ACCOUNT,
        {"days_until": {"field": "account.renewal_date", "lte": 60, "gte": 0}},
        {"a1", "a2", "a6"},
    ),
    case(
        "renewal today", RENEWALS, ACCOUNT, {"days_until": {"field": "account.renewal_date", "eq": 0}}, {"a1"}
    ),
    case(
        "renewal tomorrow",
        RENEWALS,
        ACCOUNT,
        {"days_until": {"field": "account.renewal_date", "eq": 1}},
        {"a6"},
    ),
    case(
        "renewal passed",
        RENEWALS,
        ACCOUNT,
        {"days_until": {"field": "account.renewal_date", "lt": 0}},
        {"a4"},
    ),
    case(
        "renewal far", RENEWALS, ACCOUNT, {"days_until": {"field": "account.renewal_date", "gt": 60}}, {"a3"}
    ),
    case(
        "since renewal",
        RENEWALS,
        ACCOUNT,
        {"days_since": {"field": "account.renewal_date", "gte": 1}},
        {"a4"},
    ),
    case(
        "since renewal ne",
        RENEWALS,
        ACCOUNT,
        {"days_since": {"field": "account.renewal_date", "ne": 0}},
        {"a2", "a3", "a4", "a6"},
    ),
    case(
        "renewal from now's UTC date, not its local date",
        RENEWALS,
        # 2026-03-11 02:00 UTC, which is still 2026-03-10 in UTC-5
        EvalContext(datetime(2026, 3, 10, 21, tzinfo=timezone(timedelta(hours=-5))), "account"),
        {"days_until": {"field": "account.renewal_date", "eq": 0}},
        {"a6"},
    ),
    case(
        "renewal of a contact's account",
        RENEWALS,
        CONTACT,
        {"days_until": {"field": "account.renewal_date", "lte": 0}},
        {"c1", "c2"},
    ),
    # scores and health
    case("score lt", SCORES, CONTACT, {"score": {"lt": 30}}, {"c3", "c4", "c7"}),
    case("score gte", SCORES, CONTACT, {"score": {"gte": 40}}, {"c1", "c2", "c5", "c6"}),
    case("score eq after a half-life", SCORES, CONTACT, {"score": {"eq": 60}}, {"c5", "c6"}),
    case("score between", SCORES, CONTACT, {"score": {"gt": 0, "lte": 40}}, {"c2", "c3"}),
    case(
        "score with another half-life",
        SCORES,
        replace(CONTACT, half_life_days=28.0),
        {"score": {"eq": 40}},
        {"c3"},
    ),
    case("account_score lt", SCORES, CONTACT, {"account_score": {"lt": 30}}, {"c1", "c2", "c5", "c6", "c7"}),
    case("account_score gte", SCORES, CONTACT, {"account_score": {"gte": 30}}, {"c3", "c4"}),
    case("health green", SCORES, CONTACT, {"health": "green"}, {"c1", "c5", "c6"}),
    case("health yellow", SCORES, CONTACT, {"health": "yellow"}, {"c2"}),
    case("health red", SCORES, CONTACT, {"health": "red"}, {"c3", "c4", "c7"}),
    case(
        "health red with yellow above green",
        SCORES,
        replace(CONTACT, green=30.0, yellow=60.0),
        {"health": "red"},
        {"c3", "c4", "c7"},
    ),
    case("account score", SCORES, ACCOUNT, {"score": {"lt": 30}}, {"a1", "a3"}),
    case("account account_score", SCORES, ACCOUNT, {"account_score": {"eq": 30}}, {"a2"}),
    case("account health green", SCORES, ACCOUNT, {"health": "green"}, {"a4"}),
    case("account health yellow", SCORES, ACCOUNT, {"health": "yellow"}, {"a2"}),
    case("account health red", SCORES, ACCOUNT, {"health": "red"}, {"a1", "a3"}),
    # combinators
    case("all", ATTRS, CONTACT, {"all": [{"contact.role": "admin"}, {"account.mrr": {"gt": 50}}]}, {"c1"}),
    case(
        "any",
        ATTRS,
        CONTACT,
        {"any": [{"contact.role": "member"}, {"contact.traits.vip": True}]},
        {"c1", "c3"},
    ),
    case("not", ATTRS, CONTACT, {"not": {"contact.role": "admin"}}, {"c2", "c3", "c4"}),
    case(
        "not of contains on a missing value",
        ATTRS,
        CONTACT,
        {"not": {"contact.role": {"contains": "dm"}}},
        {"c3", "c4"},
    ),
    case("not of not_in", ATTRS, CONTACT, {"not": {"contact.role": {"not_in": ["admin"]}}}, {"c1", "c5"}),
    case(
        "not of lt on a missing trait",
        ATTRS,
        CONTACT,
        {"not": {"contact.traits.seats": {"lt": 5}}},
        {"c1", "c2", "c3", "c4"},
    ),
    case("several keys", ATTRS, CONTACT, {"contact.role": "admin", "account.plan": "pro"}, {"c1"}),
    case(
        "nested",
        ATTRS,
        CONTACT,
        {
            "all": [
                {"any": [{"account.plan": "pro"}, {"account.plan": "Pro"}]},
                {"not": {"contact.traits.vip": 1}},
            ]
        },
        {"c1", "c3"},
    ),
    case(
        "account combinators",
        SCORES,
        ACCOUNT,
        {
            "any": [
                {"health": "green"},
                {"all": [{"not": {"score": {"gt": 0}}}, {"account.id": {"ne": "a2"}}]},
            ]
        },
        {"a3", "a4"},
    ),
]


SURVEYS = World(
    accounts=[account("a1")],
    contacts=[contact(c, "a1") for c in ("c1", "c2", "c3", "c4", "c5")],
    survey_answers=[
        answer(
            "c1", "a1", "nps", 3, NOW - 100 * D, 0
        ),  # a detractor long ago, a promoter lately: latest wins
        answer("c1", "a1", "nps", 10, NOW - 2 * D, 1),
        answer("c2", "a1", "nps", 9, NOW - 100 * D, 2),  # a promoter long ago, a detractor lately
        answer("c2", "a1", "nps", 6, NOW - 2 * D, 3),
        answer("c3", "a1", "nps", 2, NOW - 100 * D, 4),  # only an old detractor answer
        answer("c4", "a1", "nps", 0, NOW + D, 5),  # answered after now: not yet
        answer("c4", "a1", "csat", 1, NOW - D, 6),  # CSAT 2 (1 + 1 % 5)
        answer("c5", "a1", "nps", 1, NOW - 5 * D, 17),  # a tie in time: the larger delivery id is the latest
        answer("c5", "a1", "nps", 9, NOW - 5 * D, 8),
    ],
)
SURVEY_CASES = [
    case(
        "latest nps answer a detractor",
        SURVEYS,
        CONTACT,
        {"survey": {"kind": "nps", "score": {"lte": 6}}},
        {"c2", "c3", "c5"},
    ),
    case(
        "latest nps detractor within 90d",
        SURVEYS,
        CONTACT,
        {"survey": {"kind": "nps", "score": {"lte": 6}, "within": "90d"}},
        {"c2", "c5"},
    ),
    case("any nps answer", SURVEYS, CONTACT, {"survey": {"kind": "nps"}}, {"c1", "c2", "c3", "c5"}),
    case("csat answers", SURVEYS, CONTACT, {"survey": {"kind": "csat", "score": {"eq": 2}}}, {"c4"}),
    case("never answered nps", SURVEYS, CONTACT, {"not": {"survey": {"kind": "nps"}}}, {"c4"}),
]
CASES += SURVEY_CASES


@pytest.fixture(scope="module")
def db(backend: str) -> Iterator[Database]:
    database = open_database(url_for(backend))
    yield database
    drop_database(database)


@pytest.mark.parametrize(("data", "ctx", "raw", "expected"), CASES)
def test_sql_and_python_both_select_exactly_the_expected_subjects(
    db: Database, data: World, ctx: EvalContext, raw: Any, expected: set[str]
) -> None:
    cond = parse(raw, ctx.audience)  # type: ignore[arg-type]
    with db.begin() as conn:
        store(conn, data)
        found = {"sql": sql_ids(conn, cond, ctx), "python": pure_ids(conn, cond, ctx)}
    assert found == {"sql": expected, "python": expected}


def test_conditions_on_different_traits_never_share_a_cached_statement(db: Database) -> None:
    world = World(accounts=[account("a1", traits={"x": 1}), account("a2", traits={"y": 1})])
    with db.begin() as conn:
        store(conn, world)
        picked = [
            sql_ids(conn, parse({f"account.traits.{name}": {"exists": True}}, "account"), ACCOUNT)
            for name in ("x", "y")
        ]
    assert picked == [{"a1"}, {"a2"}]
