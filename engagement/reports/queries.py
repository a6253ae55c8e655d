"""The set-based queries behind a report: no row loops, and no sort of a big table.

Daily numbers are a grid of (key, day) rows, each counted by a correlated index-range count
(the indexes of migration 0005_reports lead with the key and then the time), so the database
reads each index entry once and never sorts millions of rows for a GROUP BY on a computed day.
Totals of additive numbers are sums of days; distinct-message totals have their own query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    String,
    and_,
    bindparam,
    case,
    distinct,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.sql import Subquery

from engagement.reports.period import Period
from engagement.store import schema
from engagement.store.types import UTCDateTime

UNSENT_STATUSES = ("queued", "skipped_late", "suppressed", "in_doubt", "failed")
HELD_CAP = "held: weekly email cap%"
HELD_WINDOW = "held: outside the send window%"
# Response kinds as recorded (SendGrid event names for email, inbox actions for nudges).
RESPONSE_FIELDS = {
    "delivered": "delivered",
    "open": "unique_opens",
    "click": "unique_clicks",
    "seen": "nudges_seen",
    "clicked": "nudges_clicked",
    "dismissed": "nudges_dismissed",
    "unsubscribe": "unsubscribes",
    "group_unsubscribe": "unsubscribes",
    "bounce": "bounces",
    "spamreport": "complaints",
}


def day_of(dialect: str, column: Any) -> ColumnElement[str]:
    """The UTC day (YYYY-MM-DD) of a timestamp column."""
    if dialect == "sqlite":  # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
        return func.substr(column, 1, 10, type_=String)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD", type_=String)


def _unindexed(dialect: str, column: Any) -> Any:
    """The column, kept from steering SQLite's index choice (its documented unary-plus idiom)."""
    if dialect != "sqlite":
        return column
    return type_coerce(literal_column(f"+{column.table.name}.{column.name}"), column.type)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _journeys(column: Any, journeys: Sequence[str] | None) -> list[ColumnElement[bool]]:
    return [column.in_(journeys)] if journeys is not None else []


def _table(name: str, columns: tuple[tuple[str, Any], ...], rows: Sequence[Sequence[Any]]) -> Subquery:
    """Literal rows as a derived table (UNION ALL of SELECTs: VALUES with column names is not portable)."""
    parts = [
        select(
            *(
                literal(value, type_).label(column)
                for (column, type_), value in zip(columns, row, strict=True)
            )
        )
        for row in rows
    ]
    return union_all(*parts).subquery(name)


def _days(period: Period) -> Subquery:
    """The period's UTC days (day, day_start, day_end), clipped to the period."""
    rows = []
    for day in period.days():
        begin = datetime.combine(day, time(), UTC)
        rows.append((day.isoformat(), max(begin, period.start), min(begin + timedelta(days=1), period.end)))
    return _table("days", (("day", String()), ("day_start", UTCDateTime()), ("day_end", UTCDateTime())), rows)


def _keys(names: tuple[str, ...], types: tuple[Any, ...], rows: Sequence[Sequence[Any]]) -> Subquery:
    return _table("keys", tuple(zip(names, types, strict=True)), rows)


def _per_day(conn: Connection, k: Subquery, days: Subquery, **counts: Any) -> list[dict[str, Any]]:
    """One row per (key, day) with the named correlated counts, leaving out days where the first is 0."""
    first = next(iter(counts))
    labelled = [count.label(name) for name, count in counts.items()]
    rows = conn.execute(select(*k.c, days.c.day, *labelled).select_from(k.join(days, true())))
    return [dict(row._mapping) for row in rows if row._mapping[first]]


def deliveries(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[dict[str, Any]]:
    """Per (journey, step, channel, day): messages sent, and the held / skipped / failed ones.

    Sends are counted on their send day, per step and day, by index-range counts (no sort of the
    whole table); the other statuses are read through the status index, on the day the status was
    decided.
    """
    d = schema.deliveries
    keys = conn.execute(
        select(d.c.journey_id, d.c.step_id, d.c.channel)
        .distinct()
        .where(*_journeys(d.c.journey_id, journeys))
    ).all()
    found: list[dict[str, Any]] = []
    if keys:
        k, days = (
            _keys(("journey_id", "step_id", "channel"), (String(), String(), String()), keys),
            _days(period),
        )
        sent = (
            select(func.count())
            .where(
                d.c.journey_id == k.c.journey_id,
                d.c.step_id == k.c.step_id,
                d.c.channel == k.c.channel,
                d.c.sent_at >= days.c.day_start,
                d.c.sent_at < days.c.day_end,
            )
            .scalar_subquery()
        )
        found += _per_day(conn, k, days, sent=sent)
    at = func.coalesce(d.c.updated_at, d.c.created_at)
    day = day_of(conn.dialect.name, at).label("day")
    stmt = (
        select(
            d.c.journey_id,
            d.c.step_id,
            d.c.channel,
            day,
            _count(d.c.status_reason.like(HELD_CAP)).label("held_cap"),
            _count(d.c.status_reason.like(HELD_WINDOW)).label("held_window"),
            _count(d.c.status == "skipped_late").label("skipped_late"),
            _count(d.c.status == "suppressed").label("suppressed"),
            _count(d.c.status == "in_doubt").label("in_doubt"),
            _count(d.c.status == "failed").label("failed"),
        )
        .where(
            d.c.status.in_(UNSENT_STATUSES),
            at >= period.start,
            at < period.end,
            *_journeys(d.c.journey_id, journeys),
        )
        # the few unsent rows through the status index, not the whole table in step order
        .group_by(_unindexed(conn.dialect.name, d.c.journey_id), d.c.step_id, d.c.channel, day)
    )
    found += [dict(r._mapping) for r in conn.execute(stmt)]
    return found


def step_conversions(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[Any]:
    """Per (journey, step, channel): messages sent in the period whose enrollment converted.

    Read from the converted enrollments outwards (a few percent of them), through the
    (enrollment, step, recipient) key, rather than joining every delivery to its enrollment.
    """
    d, e = schema.deliveries, schema.enrollments
    converted = select(e.c.id).where(e.c.outcome == "converted", *_journeys(e.c.journey_id, journeys))
    stmt = (
        select(d.c.journey_id, d.c.step_id, d.c.channel, func.count().label("conversions"))
        .where(d.c.enrollment_id.in_(converted), d.c.sent_at >= period.start, d.c.sent_at < period.end)
        .group_by(d.c.journey_id, d.c.step_id, d.c.channel)
    )
    return list(conn.execute(stmt))


def responses(
    conn: Connection, period: Period, journeys: Sequence[str] | None
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Distinct deliveries with each response kind: per (journey, step, kind) over the period, and per day.

    A contact opening one email ten times is one delivery with `open`, so one unique open; opened
    on two days, it is a unique open on each day and once in the period.
    """
    r = schema.responses
    totals = [t for t in _distinct_totals(conn, period, journeys) if t.kind in RESPONSE_FIELDS]
    if not totals:
        return totals, []
    k = _keys(
        ("journey_id", "step_id", "kind"),
        (String(), String(), String()),
        [(t.journey_id, t.step_id, t.kind) for t in totals],
    )
    days = _days(period)
    unique = (
        select(func.count(distinct(r.c.delivery_id)))
        .where(
            r.c.journey_id == k.c.journey_id,
            r.c.step_id == k.c.step_id,
            r.c.kind == k.c.kind,
            r.c.occurred_at >= days.c.day_start,
            r.c.occurred_at < days.c.day_end,
        )
        .scalar_subquery()
    )
    return totals, _per_day(conn, k, days, n=unique)


def _distinct_totals(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[Any]:
    """Distinct deliveries per (journey, step, kind) in the period, walking ix_response_report in order.

    SQLite's planner prefers the per-day index here (then sorts 3M entries for the DISTINCT), so on
    SQLite the index is named; PostgreSQL plans this well by itself.
    """
    r = schema.responses
    if conn.dialect.name != "sqlite":
        stmt = (
            select(r.c.journey_id, r.c.step_id, r.c.kind, func.count(distinct(r.c.delivery_id)).label("n"))
            .where(
                r.c.occurred_at >= period.start,
                r.c.occurred_at < period.end,
                *_journeys(r.c.journey_id, journeys),
            )
            .group_by(r.c.journey_id, r.c.step_id, r.c.kind)
        )
        return list(conn.execute(stmt))
    only = "AND journey_id IN :journeys " if journeys is not None else ""
    sql = text(
        "SELECT journey_id, step_id, kind, count(DISTINCT delivery_id) AS n "
        "FROM response INDEXED BY ix_response_report "
        f"WHERE occurred_at >= :start AND occurred_at < :end {only}"
        "GROUP BY journey_id, step_id, kind"
    ).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))
    params: dict[str, Any] = {"start": period.start, "end": period.end}
    if journeys is not None:
        sql = sql.bindparams(bindparam("journeys", expanding=True))
        params["journeys"] = list(journeys)
    return list(conn.execute(sql, params))


def entries(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[dict[str, Any]]:
    """Per (journey, holdout, entry day): enrollments that entered, and how many of them converted."""
    e = schema.enrollments
    keys = conn.execute(
        select(e.c.journey_id, e.c.holdout).distinct().where(*_journeys(e.c.journey_id, journeys))
    ).all()
    if not keys:
        return []
    k, days = _keys(("journey_id", "holdout"), (String(), Boolean()), keys), _days(period)
    same = (
        e.c.journey_id == k.c.journey_id,
        e.c.holdout == k.c.holdout,
        e.c.entered_at >= days.c.day_start,
        e.c.entered_at < days.c.day_end,
    )
    entered = select(func.count()).where(*same).scalar_subquery()
    converted = select(func.count()).where(*same, e.c.outcome == "converted").scalar_subquery()
    return _per_day(conn, k, days, entered=entered, conversions=converted)


def _days_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", later - earlier) / 86400.0


def _monday_of(dialect: str, column: Any) -> ColumnElement[str]:
    """The Monday (YYYY-MM-DD) starting the UTC week of a timestamp."""
    if dialect == "sqlite":
        return func.date(column, "weekday 0", "-6 days", type_=String)
    return func.to_char(func.date_trunc("week", func.timezone("UTC", column)), "YYYY-MM-DD", type_=String)


def time_to_value(
    conn: Connection, period: Period, journey_id: str, audience: str, milestone: str
) -> list[Any]:
    """(signup week, holdout, days to the goal milestone or None) per subject that entered in the period.

    A subject who entered more than once counts once, in the group of its first enrollment.
    """
    e = schema.enrollments
    if audience == "account":
        people, m = schema.accounts, schema.account_milestones
        signed_up, subject = people.c.signed_up_at, m.c.account_id
    else:
        people, m = schema.contacts, schema.milestones
        signed_up, subject = people.c.created_at, m.c.contact_id
    first = (
        select(func.min(e.c.id).label("id"))
        .where(e.c.journey_id == journey_id, e.c.entered_at >= period.start, e.c.entered_at < period.end)
        .group_by(e.c.subject_id)
        .subquery()
    )
    dialect = conn.dialect.name
    stmt = (
        select(
            _monday_of(dialect, signed_up).label("week"),
            e.c.holdout,
            _days_between(dialect, m.c.reached_at, signed_up).label("days"),
        )
        .select_from(
            first.join(e, e.c.id == first.c.id)
            .join(people, people.c.id == e.c.subject_id)
            .outerjoin(m, and_(subject == e.c.subject_id, m.c.name == milestone))
        )
        .where(signed_up.is_not(None))
    )
    return list(conn.execute(stmt))


def bands(conn: Connection, period: Period) -> list[Any]:
    """Per (day, subject type, band): how many snapshots."""
    s = schema.score_snapshots
    stmt = (
        select(s.c.day, s.c.subject_type, s.c.band, func.count().label("n"))
        .where(s.c.day >= period.first_day, s.c.day <= period.last_day)
        .group_by(s.c.day, s.c.subject_type, s.c.band)
        .order_by(s.c.day, s.c.subject_type)
    )
    return list(conn.execute(stmt))


def turned_red(conn: Connection, period: Period) -> tuple[date | None, list[Any]]:
    """The latest snapshot day of the period and the subjects red then but not on the snapshot a week before."""
    s = schema.score_snapshots
    latest = conn.execute(select(func.max(s.c.day)).where(s.c.day <= period.last_day)).scalar()
    if latest is None:
        return None, []
    prior = conn.execute(select(func.max(s.c.day)).where(s.c.day <= latest - timedelta(days=7))).scalar()
    if prior is None:
        return latest, []
    before = s.alias("before")
    stmt = (
        select(
            s.c.subject_type, s.c.subject_id, s.c.value, before.c.band.label("previous_band"), literal(latest)
        )
        .select_from(
            s.join(
                before,
                and_(
                    before.c.subject_type == s.c.subject_type,
                    before.c.subject_id == s.c.subject_id,
                    before.c.day == prior,
                ),
            )
        )
        .where(s.c.day == latest, s.c.band == "red", before.c.band != "red")
        .order_by(s.c.subject_type, s.c.value, s.c.subject_id)
    )
    return latest, list(conn.execute(stmt))


def latest_activity(conn: Connection) -> Any:
    """The newest entry or send recorded, or None on an empty database."""
    e, d = schema.enrollments, schema.deliveries
    found = [
        conn.execute(select(func.max(e.c.entered_at))).scalar(),
        conn.execute(select(func.max(d.c.sent_at))).scalar(),
    ]
    return max((f for f in found if f is not None), default=None)
