"""Delivery ids: deterministic, the same computed in Python and in SQL, ordered by enrollment.

An id is `EEEEEEEE-EEEE-HHHH-HHHH-HHHHHHHHHHHH`: the enrollment id in 12 hex digits, then the first
20 hex digits of md5("enrollment:step:recipient"). Ids of one enrollment sort together and new
enrollments' ids sort last, so queuing appends to the primary-key index instead of writing all
over it (a random id costs a cache miss per row once the index outgrows memory). The unique key
(enrollment_id, step_id, recipient) stays the guard against doubles; the id only has to be unique
and stable (it travels in provider metadata and comes back with webhook events).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import String
from sqlalchemy.sql.functions import FunctionElement

from engagement.store import functions, md5


def delivery_id(enrollment_id: int, step_id: str, recipient: str) -> str:
    """The id of the delivery of `step_id` to `recipient` in this enrollment."""
    digest = md5.hexdigest(f"{enrollment_id}:{step_id}:{recipient}".encode())
    prefix = f"{enrollment_id:012x}"
    return f"{prefix[:8]}-{prefix[8:]}-{digest[:4]}-{digest[4:8]}-{digest[8:20]}"


def register_sqlite(conn: sqlite3.Connection) -> None:
    """Give SQLite the function PostgreSQL computes with md5() and to_hex()."""
    conn.create_function("engagement_delivery_id", 3, delivery_id, deterministic=True)


class DeliveryId(FunctionElement[str]):
    """SQL: the delivery id of (enrollment id, step id, recipient), equal to `delivery_id`."""

    inherit_cache = True
    name = "engagement_delivery_id"
    type = String()


def _delivery_id_pg(_: DeliveryId, args: list[str]) -> str:
    enrollment, step, recipient = args
    prefix = f"lpad(to_hex({enrollment}), 12, '0')"
    digest = f"md5(({enrollment})::text || ':' || ({step}) || ':' || ({recipient}))"
    # 32 hex digits read as a uuid print as 8-4-4-4-12 in lower case: one md5 a row, not three
    return f"(({prefix} || substr({digest}, 1, 20))::uuid::text)"


functions.render(
    DeliveryId,
    sqlite=lambda _, args: f"engagement_delivery_id({functions.joined(args)})",
    postgresql=_delivery_id_pg,
)
