"""The bulk write fast path writes exactly what SQLAlchemy's own path writes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from backends import url_for
from condition_world import drop_database, open_database
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import TypeDecorator, bindparam, func, literal, select, update
from sqlalchemy.dialects import sqlite

from engagement.store import schema
from engagement.store.database import Database
from engagement.store.types import UTCDateTime, dumps, json_safe

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(backend: str) -> Iterator[Database]:
    handle = open_database(url_for(backend))
    try:
        yield handle
    finally:
        drop_database(handle)


def processors() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The fast SQLite processor, and SQLAlchemy's own chain (process_bind_param, then DATETIME's processor)."""
    dialect = sqlite.dialect()
    column_type = UTCDateTime().dialect_impl(dialect)
    fast, general = column_type.bind_processor(dialect), TypeDecorator.bind_processor(column_type, dialect)
    assert fast is not None and general is not None and fast is not general
    return fast, general


# hypothesis wants naive bounds; a day inside the calendar leaves room for any offset
NAIVE_MIN = datetime.min.replace(tzinfo=UTC).replace(tzinfo=None) + timedelta(days=1)
NAIVE_MAX = datetime.max.replace(tzinfo=UTC).replace(tzinfo=None) - timedelta(days=1)


@given(
    st.datetimes(min_value=NAIVE_MIN, max_value=NAIVE_MAX),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_sqlite_datetime_text_is_sqlalchemys(moment: datetime, offset_minutes: int) -> None:
    fast, general = processors()
    for value in (
        moment.replace(tzinfo=UTC),
        moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))),
    ):
        assert fast(value) == general(value)


def test_sqlite_datetime_refuses_naive_and_passes_none() -> None:
    process, _ = processors()
    assert process(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        process(T0.replace(tzinfo=None))


def test_json_safe_copies_plain_objects_and_converts_nested_dates() -> None:
    plain = {"report_id": 7, "source": "web", "ratio": 0.5, "ok": True, "none": None}
    safe = json_safe(plain)
    assert safe == plain and safe is not plain
    nested = {"at": T0, "list": [T0.date(), 1], 3: {"deep": T0}}
    assert json_safe(nested) == {
        "at": T0.isoformat(),
        "list": [T0.date().isoformat(), 1],
        "3": {"deep": T0.isoformat()},
    }


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(JSON_VALUES)
@example(float("nan"))
@example({"x": [float("-inf")]})
@example("a\ud800")
@example({"é": ["✓", 1.5, None, True]})
def test_a_json_columns_text_is_json_dumps_and_refuses_what_is_not_json(value: Any) -> None:
    try:
        expected: str | None = json.dumps(value, allow_nan=False)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        expected = None  # NaN, Infinity or a lone surrogate
    if expected is None:
        with pytest.raises(ValueError):
            dumps(value)
    else:
        assert dumps(value) == expected


def test_a_statement_shape_reused_with_other_bound_values_writes_the_new_values(db: Database) -> None:
    """The second UPDATE has the first one's shape (compiled once) but binds a later `updated_at`."""
    d = schema.deliveries
    rows = [
        {
            "id": f"d{i}",
            "enrollment_id": i,
            "journey_id": "j",
            "step_id": "s",
            "channel": "email",
            "recipient": f"c{i}",
            "due_at": T0,
            "created_at": T0,
        }
        for i in range(4)
    ]
    with db.begin() as conn:
        assert db.insert_ignore(conn, d, rows, None) == 4
        for n, ids in enumerate((["d0", "d1"], ["d2", "d3"])):
            stmt = (
                update(d)
                .where(d.c.id == bindparam("_id"))
                .values(status=bindparam("_status"), updated_at=T0 + timedelta(hours=n + 1))
            )
            # two statuses of the closed set (the schema CHECKs it), one per statement
            db.executemany(conn, stmt, [{"_id": i, "_status": ("sent", "delivered")[n]} for i in ids])
        found = {
            row.id: (row.status, row.updated_at)
            for row in conn.execute(select(d.c.id, d.c.status, d.c.updated_at))
        }
    one, two = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    assert found == {
        "d0": ("sent", one),
        "d1": ("sent", one),
        "d2": ("delivered", two),
        "d3": ("delivered", two),
    }


def test_insert_from_select_counts_the_rows_it_wrote_itself(db: Database) -> None:
    """The count skips rows a unique key refused and rows a trigger wrote, and holds for a statement that
    opens with WITH (Python's sqlite3 reports -1 as the row count of such a statement)."""
    en = schema.enrollments
    columns = ["journey_id", "audience", "subject_id", "holdout", "state", "entered_at"]

    def wanted(state: str, subjects: list[str]) -> Any:
        rows = select(
            literal("j").label("journey_id"),
            literal("contact").label("audience"),
            schema.contacts.c.id.label("subject_id"),
            literal(False).label("holdout"),
            literal(state).label("state"),
            literal(T0, en.c.entered_at.type).label("entered_at"),
        ).where(schema.contacts.c.id.in_(subjects))
        cte = rows.cte("wanted")
        return select(*cte.c).where(cte.c.subject_id.is_not(None))  # SQLite: ON CONFLICT needs a WHERE

    contacts = [{"id": f"c{i}", "account_id": "a", "email": f"c{i}@example.com"} for i in range(3)]
    with db.begin() as conn:
        db.insert_ignore(conn, schema.accounts, [{"id": "a", "name": "A"}], None)
        db.insert_ignore(conn, schema.contacts, contacts, None)
        assert db.insert_from_select(conn, en, columns, wanted("active", ["c0"])) == 1
        # c0 is active already: the partial unique key refuses it
        assert db.insert_from_select(conn, en, columns, wanted("active", ["c0", "c1", "c2"])) == 2
        # ended rows fire the insert trigger, whose change-log rows are not counted
        logged = select(func.count()).select_from(schema.subject_changes)
        before = conn.execute(logged).scalar_one()
        assert db.insert_from_select(conn, en, columns, wanted("ended", ["c0", "c1"])) == 2
        assert conn.execute(logged).scalar_one() == before + 2
        assert conn.execute(select(func.count()).select_from(en)).scalar_one() == 5
