"""How far a reader has read rows that other transactions keep writing: one mechanism for incremental
evaluation (it reads the `subject_change` log) and scoring (it reads `response` and `event` by key).

SQLite has one writer at a time: a reader's position is the highest key it has read, and every later key
is new. PostgreSQL hands out keys before commit and commits transactions out of order, so a key below
the highest one read may still commit; there a position is taken from the transaction horizon, the
transactions still running when the reader read:

- the change log's rows carry their transaction's id (`change_log.XID`), so its mark is the oldest
  transaction still running when the reader starts (`pg_snapshot_xmin`): every earlier transaction has
  ended and its rows were seen; rows from the mark on are read again next time (a superset is exact);
- response and event rows carry no transaction id, so a reader notes the highest keys and the next
  transaction id (`pending`), and moves its settled keys up to them only once no transaction of this
  database that was running then is still running (and a second has passed: a key is drawn before its
  transaction has an id); until then the range is read again (score_credit's keys absorb the overlap).

`check` is the start-up check of what this needs on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, Text, and_, cast, func, select, text
from sqlalchemy.sql import ColumnElement

from engagement import errors
from engagement.store import change_log, schema

GRACE = timedelta(seconds=1)  # covers an INSERT that drew its key before its transaction got an id
XID_SPACE = 2**32
NEXT_XID = text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296")
# other transactions of this database holding a transaction id (the role must see its own sessions)
RUNNING_XIDS = text(
    "SELECT backend_xid::text::bigint FROM pg_stat_activity"
    " WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
)
FUNCTIONS = ("pg_current_xact_id()", "pg_current_snapshot()", "pg_snapshot_xmin(pg_snapshot)",
             "pg_snapshot_xmax(pg_snapshot)")  # fmt: skip
log = schema.subject_changes
LAST_SEQ = select(func.coalesce(func.max(log.c.seq), 0))  # SQLite's mark


class ProgressNotReady(errors.EngagementError):
    """The database lacks what incremental evaluation and scoring need to know what they have read."""


# --- the change log: rows tagged with their transaction's id ------------------------------------------


def log_mark(dialect: str) -> ColumnElement[int]:
    """The change log's mark now, as a column to read with other values, before what it covers: rows after
    it are unread."""
    if dialect == "postgresql":  # the oldest transaction still running
        xmin = func.pg_snapshot_xmin(func.pg_current_snapshot())
        return cast(cast(xmin, Text), BigInteger)
    return LAST_SEQ.scalar_subquery()


def log_unread(dialect: str, mark: int | ColumnElement[int]) -> ColumnElement[bool]:
    """Log rows not read by a reader at `mark`, a number or a parameter (both forms are ranges of
    ix_subject_change_journey)."""
    if dialect == "sqlite":
        return and_(log.c.txid.is_(None), log.c.seq > mark)
    return log.c.txid >= mark


def log_read(dialect: str, mark: int | ColumnElement[int]) -> ColumnElement[bool]:
    """Log rows a reader at `mark` has read for good (marks only move forward)."""
    return log.c.seq <= mark if dialect == "sqlite" else log.c.txid < mark


# --- tables read by key: rows without a transaction id ------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """A reader's position in tables it reads by key: per table the settled key (everything at or below
    it is read for good) and the pending one, the transaction horizon those were noted at, and now's."""

    settled: Mapping[str, int]
    pending: Mapping[str, int]
    pending_xid: int | None
    pending_at: datetime | None
    running: tuple[int, ...] = ()  # PostgreSQL: ids of this database's other running transactions
    next_xid: int | None = None  # PostgreSQL: the first transaction id not yet handed out


def keys(conn: Connection, row: Any, tables: Sequence[str]) -> Keys:
    """The position stored in `row` (columns `<table>_settled`, `<table>_pending`, `pending_xid`,
    `pending_at`), with the transaction horizon now; read it before the rows it covers."""
    running: tuple[int, ...] = ()
    next_xid = None
    if conn.dialect.name == "postgresql":
        next_xid = int(conn.execute(NEXT_XID).scalar_one())
        running = tuple(int(x) for x in conn.execute(RUNNING_XIDS).scalars())
    return Keys(
        {t: getattr(row, f"{t}_settled") for t in tables},
        {t: getattr(row, f"{t}_pending") for t in tables},
        row.pending_xid,
        row.pending_at,
        running,
        next_xid,
    )


def advanced(dialect: str, position: Keys, tops: Mapping[str, int], now: datetime) -> dict[str, Any] | None:
    """The columns to store after reading up to `tops` at `now`, or None to keep the position as it is."""
    pending: dict[str, Any] = {f"{t}_pending": top for t, top in tops.items()}
    pending |= {"pending_xid": position.next_xid, "pending_at": now}
    if dialect == "sqlite":
        return pending | {f"{t}_settled": top for t, top in tops.items()}
    if position.pending_xid is None or position.pending_at is None or position.pending_at > now:
        return pending  # first run (or the clock went back): start watching from here
    if not _waiting(position) and now - GRACE >= position.pending_at:
        # everyone who could still have been writing below the pending keys has finished, and this run read them
        return pending | {f"{t}_settled": position.pending[t] for t in tops}
    return None  # a transaction from before the pending mark is still running: read the range again next time


def _waiting(position: Keys) -> bool:
    """Whether a transaction that was already running at the pending mark is still running."""
    assert position.pending_xid is not None
    return any(precedes(xid, position.pending_xid) for xid in position.running)


def precedes(a: int, b: int) -> bool:
    """Whether 32-bit transaction id `a` was handed out before `b` (modulo wraparound)."""
    return a != b and (b - a) % XID_SPACE < XID_SPACE // 2


# --- the start-up check ----------------------------------------------------------------------------------


def check(conn: Connection) -> None:
    """PostgreSQL: raise ProgressNotReady naming what is missing (the transaction-id functions, the
    change-log triggers, the rights on subject_change) and how to fix it. Nothing to check on SQLite."""
    if conn.dialect.name != "postgresql":
        return
    if conn.execute(text("SELECT to_regclass(:t) IS NULL"), {"t": log.name}).scalar_one():
        raise ProgressNotReady(f"the table {log.name} is missing: run `engagement db upgrade`")
    problems = _missing_functions(conn) + _missing_triggers(conn) + _missing_rights(conn)
    if problems:
        raise ProgressNotReady(
            "incremental evaluation and scoring cannot tell what they have read: " + "; ".join(problems)
        )


def _missing_functions(conn: Connection) -> list[str]:
    found = conn.execute(
        text("SELECT f, to_regprocedure(f) IS NOT NULL FROM unnest(CAST(:fs AS text[])) AS f"),
        {"fs": list(FUNCTIONS)},
    ).all()
    missing = [name for name, present in found if not present]
    if not missing:
        return []
    version = conn.execute(text("SHOW server_version")).scalar_one()
    return [f"PostgreSQL {version} lacks {', '.join(missing)}: use PostgreSQL 13 or later"]


def _missing_triggers(conn: Connection) -> list[str]:
    enabled = set(
        conn.execute(
            text(
                "SELECT c.relname || '.' || t.tgname FROM pg_trigger t"
                " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND NOT t.tgisinternal AND t.tgenabled <> 'D'"
            )
        ).scalars()
    )
    missing = [f"{table}.{name}" for table, name in change_log.triggers() if f"{table}.{name}" not in enabled]
    if not missing:
        return []
    return [
        f"the change-log triggers {', '.join(missing)} are missing or disabled, so writes to those tables "
        "go unseen: run `engagement db upgrade`, which re-creates them"
    ]


def _missing_rights(conn: Connection) -> list[str]:
    """The triggers insert into subject_change as the writing role; evaluation reads it and prunes it."""
    table = log.name
    user, sequence, *rights = conn.execute(
        text(
            "SELECT current_user, s, has_table_privilege(:t, 'INSERT'), has_table_privilege(:t, 'SELECT'),"
            " has_table_privilege(:t, 'DELETE'), s IS NOT NULL AND has_sequence_privilege(s, 'USAGE')"
            " FROM pg_get_serial_sequence(:t, 'seq') AS s"
        ),
        {"t": table},
    ).one()
    lacking = [
        name for name, held in zip(("INSERT", "SELECT", "DELETE"), rights[:3], strict=True) if not held
    ]
    grants = [f"GRANT {', '.join(lacking)} ON {table} TO {user}"] if lacking else []
    if not rights[3]:
        grants.append(f"GRANT USAGE ON SEQUENCE {sequence or table + '_seq_seq'} TO {user}")
    if not grants:
        return []
    return [f"role {user} may not write the change log (fix: {'; '.join(grants)})"]
