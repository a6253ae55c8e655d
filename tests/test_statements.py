"""Evaluation statements are built once per owner and key and run with each instant's parameters
(evaluation/statements.py); tests/test_conditions_agree.py holds reused statements to fresh ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from condition_world import NOW, open_database
from sqlalchemy import select

from engagement.conditions import sql
from engagement.conditions.context import EvalContext
from engagement.conditions.parse import parse
from engagement.evaluation import statements
from engagement.store.database import Database


@pytest.fixture
def sqlite_db() -> Iterator[Database]:
    db = open_database("sqlite://")
    yield db
    db.dispose()


def test_a_statement_is_built_once_per_owner_and_key_and_given_each_instants_values(
    sqlite_db: Database,
) -> None:
    raw = {
        "all": [
            {"event_count": {"event": "x", "gte": 1, "within": "7d"}},
            {"days_until": {"field": "account.renewal_date", "lte": 3}},
            {"score": {"gte": 1}},
        ]
    }
    cond = parse(raw, "contact")
    owner, built = object(), []

    def build(ctx: EvalContext) -> Any:
        built.append(ctx.now)
        source, subject = sql.subjects_from("contact")
        return select(subject).select_from(source).where(sql.compile_condition(cond, ctx))

    first, later = EvalContext(NOW), EvalContext(NOW + timedelta(hours=2))
    with sqlite_db.begin() as conn:
        a, values_a = statements.prepared(conn, ("test", 1), owner, [first], lambda: build(first))
        b, values_b = statements.prepared(conn, ("test", 1), owner, [later], lambda: build(later))
        c, _ = statements.prepared(conn, ("test", 1), object(), [later], lambda: build(later))

    assert built == [NOW, NOW + timedelta(hours=2)]  # the third call: another owner
    assert a is b and c is not a
    assert values_a == {}  # a new statement holds its own instant's values
    assert values_b == {
        "now_t_0": later.now,
        "now_t_m604800000000": later.now - timedelta(days=7),
        "now_d_4": later.today + timedelta(days=4),  # whole days until the renewal < 4
        "now_n_0": later.now_day,
    }


def test_a_statement_with_a_bound_beyond_the_calendar_is_built_again_each_time(sqlite_db: Database) -> None:
    cond = parse({"milestone": "x", "within": "1000000d"}, "contact")  # the window starts before year 1
    owner, built = object(), []

    def build(ctx: EvalContext) -> Any:
        built.append(ctx.now)
        source, subject = sql.subjects_from("contact")
        return select(subject).select_from(source).where(sql.compile_condition(cond, ctx))

    early = datetime(2026, 1, 1, tzinfo=UTC)
    with sqlite_db.begin() as conn:
        for now in (early, early + timedelta(days=1)):
            ctx = EvalContext(now)
            statements.prepared(conn, ("test", 2), owner, [ctx], lambda ctx=ctx: build(ctx))

    assert built == [early, early + timedelta(days=1)]
