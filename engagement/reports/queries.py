"""The set-based queries behind a report: each one GROUP BY over a table, never a row loop.

Every query returns rows per (journey, [step,] UTC day) so totals are sums of days, and the
daily series and the totals can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, and_, case, func, literal, select
from sqlalchemy.sql import Select

from engagement.reports.period import Period
from engagement.store import schema

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


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _journeys(column: Any, journeys: Sequence[str] | None) -> list[ColumnElement[bool]]:
    return [column.in_(journeys)] if journeys is not None else []


def deliveries(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[Any]:
    """Per (journey, step, channel, day): sends and the current status counts.

    A delivery's day is when it was sent, or else when its current status was decided.
    """
    d = schema.deliveries
    at = func.coalesce(d.c.sent_at, d.c.updated_at, d.c.created_at)
    sent = and_(d.c.sent_at >= period.start, d.c.sent_at < period.end)
    day = day_of(conn.dialect.name, at).label("day")
    stmt: Select[Any] = (
        select(
            d.c.journey_id,
            d.c.step_id,
            d.c.channel,
            day,
            _count(sent).label("sent"),
            _count(and_(sent, d.c.channel != "email")).label("delivered"),
            _count(and_(d.c.status == "queued", d.c.status_reason.like(HELD_CAP))).label("held_cap"),
            _count(and_(d.c.status == "queued", d.c.status_reason.like(HELD_WINDOW))).label("held_window"),
            _count(d.c.status == "skipped_late").label("skipped_late"),
            _count(d.c.status == "suppressed").label("suppressed"),
            _count(d.c.status == "in_doubt").label("in_doubt"),
            _count(d.c.status == "failed").label("failed"),
        )
        .where(at >= period.start, at < period.end, *_journeys(d.c.journey_id, journeys))
        .group_by(d.c.journey_id, d.c.step_id, d.c.channel, day)
    )
    return list(conn.execute(stmt))


def step_conversions(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[Any]:
    """Per (journey, step, channel): messages sent in the period whose enrollment converted.

    Read from the converted enrollments outwards (a few percent of them), through the
    (enrollment, step, recipient) key, rather than joining every delivery to its enrollment.
    """
    d, e = schema.deliveries, schema.enrollments
    stmt = (
        select(d.c.journey_id, d.c.step_id, d.c.channel, func.count().label("conversions"))
        .select_from(e.join(d, d.c.enrollment_id == e.c.id))
        .where(
            e.c.outcome == "converted",
            d.c.sent_at >= period.start,
            d.c.sent_at < period.end,
            *_journeys(e.c.journey_id, journeys),
        )
        .group_by(d.c.journey_id, d.c.step_id, d.c.channel)
    )
    return list(conn.execute(stmt))


def responses(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[Any]:
    """Per (journey, step, kind, day): distinct deliveries whose first such response in the period was that day.

    A contact opening one email ten times is one delivery with `open`, so one unique open.
    """
    r = schema.responses
    first = (
        select(
            r.c.journey_id,
            r.c.step_id,
            r.c.kind,
            func.min(r.c.occurred_at).label("first_at"),
        )
        .where(
            r.c.kind.in_(list(RESPONSE_FIELDS)),
            r.c.occurred_at >= period.start,
            r.c.occurred_at < period.end,
            *_journeys(r.c.journey_id, journeys),
        )
        .group_by(r.c.journey_id, r.c.step_id, r.c.kind, r.c.delivery_id)
        .subquery()
    )
    day = day_of(conn.dialect.name, first.c.first_at).label("day")
    stmt = select(first.c.journey_id, first.c.step_id, first.c.kind, day, func.count().label("n")).group_by(
        first.c.journey_id, first.c.step_id, first.c.kind, day
    )
    return list(conn.execute(stmt))


def entries(conn: Connection, period: Period, journeys: Sequence[str] | None) -> list[Any]:
    """Per (journey, entry day, holdout): enrollments that entered, and how many of them converted."""
    e = schema.enrollments
    day = day_of(conn.dialect.name, e.c.entered_at).label("day")
    stmt = (
        select(
            e.c.journey_id,
            day,
            e.c.holdout,
            func.count().label("entered"),
            _count(e.c.outcome == "converted").label("conversions"),
        )
        .where(
            e.c.entered_at >= period.start, e.c.entered_at < period.end, *_journeys(e.c.journey_id, journeys)
        )
        .group_by(e.c.journey_id, day, e.c.holdout)
    )
    return list(conn.execute(stmt))


def _days_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[float]:
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", later - earlier) / 86400.0


def _monday_of(dialect: str, column: Any) -> ColumnElement[str]:
    """The Monday (YYYY-MM-DD) starting the UTC week of a timestamp."""
    if dialect == "sqlite":
        return func.date(column, "weekday 0", "-6 days", type_=String)
    return func.to_char(func.date_trunc("week", func.timezone("UTC", column)), "YYYY-MM-DD", type_=String)


def time_to_value(conn: Connection, period: Period, journey_id: str, audience: str, milestone: str) -> list[Any]:
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
    stmt = select(
        _monday_of(dialect, signed_up).label("week"),
        e.c.holdout,
        _days_between(dialect, m.c.reached_at, signed_up).label("days"),
    ).select_from(
        first.join(e, e.c.id == first.c.id)
        .join(people, people.c.id == e.c.subject_id)
        .outerjoin(m, and_(subject == e.c.subject_id, m.c.name == milestone))
    ).where(signed_up.is_not(None))
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
