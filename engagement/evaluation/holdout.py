"""Deterministic holdout: a hash of journey and subject, the same in SQL and in Python."""

from __future__ import annotations

import sqlite3

from sqlalchemy import BigInteger
from sqlalchemy.sql.functions import FunctionElement

from engagement.store import functions, md5

SPACE = 2**32


def bucket(key: str) -> int:
    """The first 32 bits of md5(key), 0 .. 2**32-1."""
    return int(md5.hexdigest(key.encode("utf-8"))[:8], 16)


def in_holdout(journey_id: str, subject_id: str, fraction: float) -> bool:
    """Whether this subject is in this journey's holdout."""
    return bucket(f"{journey_id}:{subject_id}") < int(fraction * SPACE)


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
