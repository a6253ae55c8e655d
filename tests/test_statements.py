"""A statement built at one instant and run with another instant's parameters selects what a statement
built at that other instant does (evaluation/statements.py reuses them from tick to tick)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from backends import postgres_url
from condition_world import NOW, conditions, contexts, drop_database, open_database, store, worlds
from condition_world import sql_ids as compiled_ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engagement.conditions import sql
from engagement.conditions.context import EvalContext
from engagement.conditions.parse import parse
from engagement.evaluation import statements
from engagement.store.database import Database

LATER = st.builds(
    lambda days, seconds: timedelta(days=days, seconds=seconds),
    st.integers(-40, 40),
    st.sampled_from([0, 1, 3599, 7200, 43_200, 86_399]),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, ...]:
    audience = draw(st.sampled_from(["contact", "account"]))
    return draw(worlds()), draw(contexts(audience)), draw(conditions(audience)), draw(LATER)


@pytest.fixture(scope="module")
def sqlite_db() -> Iterator[Database]:
    db = open_database("sqlite://")
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[Database]:
    db = open_database(postgres_url())
    yield db
    drop_database(db)


def at(ctx: EvalContext, now: datetime) -> EvalContext:
    """The same rules at another instant, with a record of its own."""
    return EvalContext(now, ctx.audience, ctx.half_life_days, ctx.green, ctx.yellow)


def check_reuse(db: Database, scenario: tuple[Any, ...]) -> None:
    world, ctx, raw, shift = scenario
    cond = parse(raw, ctx.audience)
    first, later = at(ctx, ctx.now), at(ctx, ctx.now + shift)
    source, subject = sql.subjects_from(ctx.audience)
    built = select(subject).select_from(source).where(sql.compile_condition(cond, first))
    with db.begin() as conn:
        store(conn, world)
        if first.unreusable:  # a bound beyond the calendar at the first instant: never reused
            return
        try:
            values = sql.instants(sql.instant_keys(built), {"now": later})
        except OverflowError:  # beyond the calendar at the later one: statements.py builds afresh
            return
        assert set(conn.execute(built, values).scalars()) == compiled_ids(conn, cond, later)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_a_statement_reused_at_another_instant_selects_the_same_subjects_on_sqlite(
    sqlite_db: Database, scenario: tuple[Any, ...]
) -> None:
    check_reuse(sqlite_db, scenario)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_a_statement_reused_at_another_instant_selects_the_same_subjects_on_postgresql(
    postgres_db: Database, scenario: tuple[Any, ...]
) -> None:
    check_reuse(postgres_db, scenario)


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
