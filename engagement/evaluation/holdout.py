"""Deterministic holdout: a hash of journey and subject, the same in SQL and in Python."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from engagement.store import md5

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


@compiles(Bucket, "sqlite")
def _bucket_sqlite(element: Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    return f"engagement_bucket({compiler.process(element.clauses, **kw)})"


@compiles(Bucket, "postgresql")
def _bucket_pg(element: Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"(('x' || substr(md5({arg}), 1, 8))::bit(32)::bigint)"
