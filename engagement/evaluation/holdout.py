"""Deterministic holdout: a hash of journey and subject (or its account), the same in SQL and in Python.

`holdout: 10%` hashes `journey:subject`; `holdout: {share: 10%, by: account}` hashes `journey:account`, so
all of an account's contacts land in the same group (an account journey's subject is its account: both
ways give the same buckets). `enroll.candidates` computes the SQL twin for the whole base.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import BigInteger, ColumnElement, func, literal
from sqlalchemy.sql.functions import FunctionElement

from engagement import vocab
from engagement.store import functions, md5

SPACE = 2**32


def bucket(key: str) -> int:
    """The first 32 bits of md5(key), 0 .. 2**32-1."""
    return int(md5.hexdigest(key.encode("utf-8"))[:8], 16)


def in_holdout(
    journey_id: str,
    subject_id: str,
    fraction: float,
    *,
    by: vocab.HoldoutBy = vocab.HoldoutBy.CONTACT,
    account_id: str | None = None,
) -> bool:
    """Whether this subject is in this journey's holdout (`by` account: its account's group)."""
    hashed = (account_id or subject_id) if by == vocab.HoldoutBy.ACCOUNT else subject_id
    return bucket(f"{journey_id}:{hashed}") < int(fraction * SPACE)


def held_sql(
    journey_id: str,
    fraction: float,
    by: vocab.HoldoutBy,
    subject: ColumnElement[str],
    account: ColumnElement[str],
) -> ColumnElement[bool] | None:
    """SQL twin of `in_holdout` for a whole base of subjects (None when nothing is held out)."""
    held = int(fraction * SPACE)  # buckets below this are held out
    if not held:
        return None  # no bucket to compute (on SQLite a Python call a candidate)
    hashed = func.coalesce(account, subject) if by == vocab.HoldoutBy.ACCOUNT else subject
    return Bucket(literal(journey_id + ":") + hashed) < held


def register_sqlite(conn: sqlite3.Connection) -> None:
    """Give SQLite the bucket function PostgreSQL computes with md5()."""
    conn.create_function("engagement_bucket", 1, bucket, deterministic=True)


class Bucket(FunctionElement[int]):
    """SQL: the holdout bucket of a text key."""

    inherit_cache = True
    name = "engagement_bucket"
    type = BigInteger()


functions.render(
    Bucket,
    sqlite=lambda _, args: f"engagement_bucket({args[0]})",
    postgresql=lambda _, args: f"(('x' || substr(md5({args[0]}), 1, 8))::bit(32)::bigint)",
)
