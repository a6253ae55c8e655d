"""Revenue rows and the account's current values that follow them.

A revenue row says: from `effective_at` on, the account pays `mrr` a month. Imports, account changes and
Stripe write rows (`write`, which also rewrites those accounts' revenue_month states: store/revenue_months.py);
`settle` then gives each account the `mrr` of its latest row, and the plan and renewal date of that row when
it was just written and gives them, so an older row changes nothing current.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql import ColumnElement

from engagement import vocab
from engagement.config import Touch
from engagement.ingest import upserts
from engagement.ingest.records import AccountIn, RevenueIn
from engagement.store import database, revenue_months, schema
from engagement.store.database import Database, among
from engagement.store.types import UTCDateTime

REVENUE = schema.table(schema.Revenue)
KEY = ["account_id", "effective_at"]
WRITTEN = ["mrr", "plan", "renewal_date", "source", "recorded_at"]
CHUNK = 1000
# one import's rows, as read: no index, so each row is an append; dropped when the import is done
STAGED = Table(
    "revenue_import",
    MetaData(),
    Column("line", Integer, primary_key=True, autoincrement=False),  # on SQLite the rowid: still an append
    Column("account_id", String(200), nullable=False),
    Column("effective_at", UTCDateTime(), nullable=False),
    Column("mrr", Float, nullable=False),
    Column("plan", String(100)),
    Column("renewal_date", Date),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def write(db: Database, conn: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Insert or correct revenue rows (`account_id, effective_at, mrr, plan, renewal_date, source` each).

    A row equal to the stored one for its (account, instant) is left unwritten, so writing the same rows
    again changes nothing; a row that differs replaces it and is stamped `recorded_at = now`.
    """
    # one row per key and statement (PostgreSQL updates a row at most once per INSERT); the last one wins
    latest = {(row["account_id"], row["effective_at"]): {**row, "recorded_at": now} for row in rows}
    db.upsert(conn, REVENUE, list(latest.values()), KEY, WRITTEN, only_if=_differs)
    revenue_months.refresh(conn, {account for account, _ in latest})


def _differs(new: Any) -> ColumnElement[bool]:
    r = REVENUE.c
    return or_(
        r.mrr != new.mrr,
        r.plan.is_distinct_from(new.plan),
        r.renewal_date.is_distinct_from(new.renewal_date),
        r.source != new.source,
    )


class Staged:
    """The rows of one revenue import, held in a temporary table until the whole file is read.

    Rows go in as appends; `unknown_accounts` then finds the lines naming no account in one query, and
    `write` moves the rows into `revenue` in key order (the last line of a repeated account and instant
    wins), which keeps the unique index's writes sequential: a 1M-row file in random order costs about
    what a sorted one does.
    """

    def __init__(self, db: Database, conn: Connection) -> None:
        self.db, self.conn = db, conn
        self.accounts: set[str] = set()  # the accounts the rows name (a set here costs less than a DISTINCT)
        database.temporary_tables_on_disk(conn)  # a whole file's rows: not in memory
        STAGED.create(conn)

    def add(self, rows: Sequence[tuple[int, RevenueIn]]) -> None:
        """Hold these (line, row) pairs."""
        # a row's fields are the table's columns
        self.db.append(self.conn, STAGED, [{"line": line, **r.__dict__} for line, r in rows])
        self.accounts.update(r.account_id for _, r in rows)

    def unknown_accounts(self) -> list[tuple[int, str]]:
        """(line, account id) of each held row whose account does not exist, in line order."""
        s = STAGED.c
        query = select(s.line, s.account_id).where(~_known(s.account_id)).order_by(s.line)
        return [(line, account) for line, account in self.conn.execute(query)]

    def write(self, now: datetime, rules: Touch) -> None:
        """Write the held rows of known accounts as `import` rows, settle their accounts, drop the table."""
        s = STAGED.c
        latest_line = (
            func.row_number()
            .over(partition_by=(s.account_id, s.effective_at), order_by=s.line.desc())
            .label("n")
        )
        columns = [s.account_id, s.effective_at, s.mrr, s.plan, s.renewal_date]
        ranked = select(*columns, latest_line).where(_known(s.account_id)).subquery("ranked")
        query = (
            select(
                *(ranked.c[c.name] for c in columns),
                literal(vocab.RevenueSource.IMPORT.value, String()),
                literal(now, UTCDateTime()),
            )
            .where(ranked.c.n == 1)
            .order_by(ranked.c.account_id, ranked.c.effective_at)
        )
        names = [*KEY, "mrr", "plan", "renewal_date", "source", "recorded_at"]
        self.db.upsert_from_select(self.conn, REVENUE, names, query, KEY, WRITTEN, _differs)
        revenue_months.refresh(self.conn, self.accounts)  # an unknown account has no rows: it gets no states
        settle(self.db, self.conn, self.accounts, now, rules)  # an unknown account has no row to update
        STAGED.drop(self.conn)


def _known(account_id: Any) -> ColumnElement[bool]:
    a = schema.accounts.c
    return exists().where(a.id == account_id)


def _latest(column: Any) -> Any:
    """`column` of the account's latest revenue row (correlated to the account being updated)."""
    r, a = REVENUE.c, schema.accounts.c
    return (
        select(column).where(r.account_id == a.id).order_by(r.effective_at.desc()).limit(1).scalar_subquery()
    )


def settle(db: Database, conn: Connection, account_ids: Iterable[str], now: datetime, rules: Touch) -> None:
    """Give these accounts the current values of their latest revenue row, then their touch tier anew.

    The `mrr` always (the MRR now is the latest row's); the plan and renewal date only from a latest row
    written at `now` that gives them, so an account change with no revenue row behind it (a new plan at the
    same MRR) is not undone by an older row. Accounts without revenue rows keep what they have.
    """
    a = schema.accounts.c
    r = REVENUE.c
    fresh = _latest(r.recorded_at) == now
    mrr = _latest(r.mrr)
    plan = case((fresh, func.coalesce(_latest(r.plan), a.plan)), else_=a.plan)
    renewal = case((fresh, func.coalesce(_latest(r.renewal_date), a.renewal_date)), else_=a.renewal_date)
    differs: ColumnElement[bool] = or_(
        a.mrr != mrr, a.plan.is_distinct_from(plan), a.renewal_date.is_distinct_from(renewal)
    )
    ids = sorted(set(account_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        changed = conn.execute(
            update(schema.accounts)
            .where(among(conn, a.id, chunk), exists().where(r.account_id == a.id), differs)
            .values(mrr=mrr, plan=plan, renewal_date=renewal, updated_at=now)
            .returning(a.id)
        ).scalars()
        upserts.retouch(conn, list(changed), rules)


def mrr_changes(
    conn: Connection,
    records: Sequence[AccountIn],
    times: Mapping[str, datetime],
    default: datetime,
    source: vocab.RevenueSource,
) -> list[dict[str, Any]]:
    """The revenue rows of the account records that change their account's `mrr`, each at its own time.

    Read before the records are written: the row is due when the stored `mrr` differs (a new account's is
    0). `times` gives a record's own time where it carries one (a Segment call's timestamp), else `default`.
    """
    given = {r.id: r for r in records if "mrr" in r.model_fields_set}  # the last record of an id wins
    stored: dict[str, float] = {}
    ids = sorted(given)
    a = schema.accounts.c
    for start in range(0, len(ids), CHUNK):
        found = conn.execute(select(a.id, a.mrr).where(among(conn, a.id, ids[start : start + CHUNK])))
        stored.update({aid: value for aid, value in found})
    return [
        {
            "account_id": aid,
            "effective_at": times.get(aid, default),
            "mrr": record.mrr,
            "plan": record.plan,
            "renewal_date": record.renewal_date,
            "source": source,
        }
        for aid, record in given.items()
        if stored.get(aid, 0.0) != record.mrr
    ]
