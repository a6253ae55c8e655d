"""Kept statements run straight through the driver on SQLite (store/direct.py) give what SQLAlchemy gives:
the same rows and values, the same row counts, the same errors; what it cannot run, SQLAlchemy runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from backends import BACKENDS, url_for
from sqlalchemy import Connection, bindparam, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound, StatementError

from engagement.store import direct, schema
from engagement.store.database import Database

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
c, a, en = schema.contacts, schema.accounts, schema.enrollments


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    db = Database(url_for(request.param))
    db.create_all()
    with db.begin() as conn:
        conn.execute(insert(a), [{"id": "a1", "name": "Acme", "signed_up_at": NOW}])
        conn.execute(
            insert(c),
            [
                {"id": f"c{i}", "account_id": "a1", "email": f"c{i}@example.com", "traits": {"n": i},
                 "created_at": NOW - timedelta(days=i), "role": None if i % 2 else "admin"}
                for i in range(6)
            ],
        )  # fmt: skip
    yield db
    with db.begin() as conn:
        for table in (en, c, a):
            conn.execute(table.delete())
    db.dispose()


def both(
    conn: Connection, stmt: Any, params: dict[str, Any] | None = None, *, driven: bool = True
) -> tuple[list[Any], list[Any]]:
    """The rows SQLAlchemy gives and the rows `direct.execute` gives, as tuples; the latter from the
    driver itself on SQLite when `driven`, from SQLAlchemy otherwise."""
    theirs = [tuple(r) for r in conn.execute(stmt, params or {}).all()]
    result = direct.execute(conn, stmt, params)
    assert isinstance(result, direct.Rows) == (driven and conn.dialect.name == "sqlite")
    return theirs, [tuple(r) for r in result.all()]


def test_rows_and_their_values_are_sqlalchemys_own(db: Database) -> None:
    stmt = (
        select(c.c.id, c.c.created_at, c.c.traits, c.c.role, (c.c.created_at > bindparam("since")).label("new"))
        .where(c.c.account_id == bindparam("account"), c.c.created_at <= bindparam("until"))
        .order_by(c.c.id)
    )  # fmt: skip
    params = {"account": "a1", "since": NOW - timedelta(days=2), "until": NOW - timedelta(days=1)}
    with db.begin() as conn:
        theirs, ours = both(conn, stmt, params)
        row = direct.execute(conn, stmt, params).all()[0]
    assert ours == theirs and len(ours) == 5
    assert [type(v) for v in ours[0]] == [type(v) for v in theirs[0]]
    assert row.created_at == NOW - timedelta(days=1) and row.created_at.tzinfo is not None
    assert row.traits == {"n": 1} and row.id == "c1"


def test_each_run_takes_its_own_parameters_and_the_values_bound_in_the_statement(db: Database) -> None:
    stmt = (
        select(c.c.id, literal(7).label("seven")).where(c.c.created_at > bindparam("since")).order_by(c.c.id)
    )
    with db.begin() as conn:
        first = direct.execute(conn, stmt, {"since": NOW - timedelta(days=2)}).all()
        second = direct.execute(conn, stmt, {"since": NOW - timedelta(days=4)}).all()
    assert [tuple(r) for r in first] == [("c0", 7), ("c1", 7)]
    assert [r.id for r in second] == ["c0", "c1", "c2", "c3"]


def test_row_counts_and_returned_rows_match(db: Database) -> None:
    enroll = db.insert_select(
        en,
        ["journey_id", "audience", "subject_id", "account_id", "holdout", "state", "entered_at"],
        select(
            bindparam("journey"), literal("contact"), c.c.id, c.c.account_id, literal(False),
            literal("active"), bindparam("at"),
        ).where(c.c.created_at > bindparam("since")),
    )  # fmt: skip
    returning = enroll.returning(en.c.subject_id, en.c.entered_at)
    touch = update(c).where(c.c.created_at > bindparam("since")).values(updated_at=bindparam("at"))
    with db.begin() as conn:
        params = {"journey": "j1", "at": NOW, "since": NOW - timedelta(days=3)}
        assert db.inserted(conn, enroll, params, kept=True) == 3
        assert db.inserted(conn, enroll, params, kept=True) == 0  # the same subjects: nothing new
        rows = list(db.inserted_returning(conn, returning, params | {"journey": "j2"}, kept=True))
        assert sorted(rows) == [(f"c{i}", NOW) for i in range(3)]
        assert direct.execute(conn, touch, {"at": NOW, "since": NOW - timedelta(days=2)}).rowcount == 2
        assert conn.execute(touch, {"at": NOW, "since": NOW - timedelta(days=2)}).rowcount == 2


def test_errors_are_the_ones_sqlalchemy_raises(db: Database) -> None:
    stmt = select(c.c.id).where(c.c.created_at > bindparam("since"))
    clash = insert(c).values(id="c0", account_id="a1", email="again@example.com")
    with db.begin() as conn:
        with pytest.raises(StatementError, match=r"A value is required for bind parameter 'since'"):
            direct.execute(conn, stmt, {})
        with pytest.raises(StatementError, match="naive datetime"):  # refused by the bind processor
            direct.execute(conn, stmt, {"since": datetime(2026, 1, 1)})  # noqa: DTZ001
        for wanted, error in ((c.c.id == "nobody", NoResultFound), (c.c.id != "", MultipleResultsFound)):
            with pytest.raises(error):
                conn.execute(select(c.c.id).where(wanted)).one()
            with pytest.raises(error):
                direct.execute(conn, select(c.c.id).where(wanted)).one()
    with db.begin() as conn, pytest.raises(IntegrityError):
        direct.execute(conn, clash)
    with db.begin() as conn:  # nothing of the failed insert was kept
        assert conn.execute(select(func.count()).select_from(c)).scalar_one() == 6


def test_what_the_driver_path_cannot_run_sqlalchemy_runs(db: Database) -> None:
    expanding = select(c.c.id).where(c.c.id.in_(bindparam("ids", expanding=True))).order_by(c.c.id)
    unnamed = select(c.c.id, literal(1).label("class")).order_by(
        c.c.id
    )  # a name a Python attribute cannot be
    with db.begin() as conn:
        theirs, ours = both(conn, expanding, {"ids": ["c2", "c4", "nobody"]}, driven=False)
        assert ours == theirs == [("c2",), ("c4",)]
        theirs, ours = both(conn, unnamed, driven=False)
        assert ours == theirs and len(ours) == 6
        assert direct.execute(conn, select(c.c.id).where(c.c.id == "c3")).scalar_one() == "c3"
