"""The SQL compiler and the Python evaluator select the same subjects, on random worlds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from backends import postgres_url
from condition_world import conditions, contexts, drop_database, open_database, store, worlds
from condition_world import pure_ids as python_ids
from condition_world import sql_ids as compiled_ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engagement.conditions.parse import parse
from engagement.store.database import Database


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, ...]:
    audience = draw(st.sampled_from(["contact", "account"]))
    return draw(worlds()), draw(contexts(audience)), draw(conditions(audience))


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


def check_agreement(db: Database, scenario: tuple[Any, ...]) -> None:
    world, ctx, raw = scenario
    cond = parse(raw, ctx.audience)
    with db.begin() as conn:
        store(conn, world)
        assert compiled_ids(conn, cond, ctx) == python_ids(conn, cond, ctx)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_sql_and_python_select_the_same_subjects_on_sqlite(
    sqlite_db: Database, scenario: tuple[Any, ...]
) -> None:
    check_agreement(sqlite_db, scenario)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_sql_and_python_select_the_same_subjects_on_postgresql(
    postgres_db: Database, scenario: tuple[Any, ...]
) -> None:
    check_agreement(postgres_db, scenario)
