"""A hand-built week of one journey, with every number its report must show worked out by hand.

Period: 2026-03-01 to 2026-03-07 (UTC). Journey `onb` (goal: milestone first_report), steps
`welcome` (email), `nudge` (in-app) and `followup` (email); journey `nohold` has no holdout.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from engagement.conditions import ast
from engagement.reports.build import JourneyInfo
from engagement.reports.period import between
from engagement.store import schema
from engagement.store.database import Database

PERIOD = between("2026-03-01", "2026-03-07")
NOW = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
KNOWN = {
    "onb": JourneyInfo("onb", "Onboarding", "contact", ast.Milestone("first_report")),
    "nohold": JourneyInfo("nohold", "No holdout", "contact", ast.Milestone("first_report")),
}


JOURNEY = """
id: onb
name: Onboarding
status: active
trigger: {event: signed_up}
goal: {milestone: first_report}
holdout: 10%
steps:
  - id: nudge
    in_app: {title: Connect your data, body: It takes two minutes.}
"""


def at(day: int, hour: int = 10, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def seed(db: Database) -> None:
    """Write the world's rows straight into the real tables."""
    accounts = [{"id": "acme", "name": "Acme", "signed_up_at": at(1, month=2)}]
    contacts: list[dict[str, Any]] = []
    enrollments: list[dict[str, Any]] = []
    signups = {
        **{f"c{i}": at(2, 9) for i in (1, 2)},
        "c3": at(3, 9),
        **{f"c{i}": at(4, 9) for i in (4, 5, 6)},
        **{f"c{i}": at(26, 9, month=2) for i in (7, 8, 9, 10)},  # the week of Monday 2026-02-23
        **{f"h{i}": at(2, 9) for i in (1, 2, 3, 4)},
        "c0": at(10, 9, month=2),
        **{f"n{i}": at(2, 9) for i in (1, 2, 3)},
    }
    for cid, signed in signups.items():
        contacts.append({"id": cid, "account_id": "acme", "email": f"{cid}@x.example", "created_at": signed})
    converted = {"c1", "c2", "c7", "h1", "c0", "n1"}
    entered = {
        **{f"c{i}": at(2) for i in range(1, 7)},
        **{f"c{i}": at(3) for i in range(7, 11)},
        **{f"h{i}": at(2) for i in range(1, 5)},
        "c0": at(20, month=2),  # before the period: left out
    }
    ids: dict[str, int] = {}
    for n, (cid, when) in enumerate(entered.items(), start=1):
        ids[cid] = n
        enrollments.append(
            _enrollment(n, "onb", cid, when, holdout=cid.startswith("h"), converted=cid in converted)
        )
    for n, cid in enumerate(("n1", "n2", "n3"), start=100):
        enrollments.append(_enrollment(n, "nohold", cid, at(4), holdout=False, converted=cid in converted))
    deliveries: list[dict[str, Any]] = []
    for i in range(1, 11):
        cid = f"c{i}"
        if i == 9:
            status, sent, updated = "in_doubt", None, at(3, 11)
        elif i == 10:
            status, sent, updated = "skipped_late", None, at(3, 11)
        else:
            status, sent, updated = "sent", at(2 if i <= 6 else 3, 11), at(2 if i <= 6 else 3, 11)
        deliveries.append(_delivery(f"w{i}", ids[cid], "welcome", "email", cid, status, sent, updated))
    for i in range(1, 5):
        deliveries.append(
            _delivery(f"n{i}", ids[f"c{i}"], "nudge", "in_app", f"c{i}", "sent", at(4, 9), at(4, 9))
        )
    for i, status, reason, hold in (
        (5, "queued", "held: weekly email cap reached", "weekly_cap"),
        (6, "queued", "held: outside the send window", "send_window"),
        (7, "suppressed", "address is on the suppression list", None),
        (8, "failed", "550 rejected", None),
    ):
        deliveries.append(
            _delivery(
                f"f{i}", ids[f"c{i}"], "followup", "email", f"c{i}", status, None, at(5, 9), reason, hold
            )
        )
    responses: list[tuple[str, str, datetime]] = [
        *((f"w{i}", "delivered", at(2, 11, 1)) for i in range(1, 7)),
        *(("w1", "open", at(2, 12, m)) for m in range(10)),  # ten opens of one email: one unique open
        ("w2", "open", at(2, 13)),
        ("w2", "open", at(4, 13)),  # a second open two days later: still one, on its first day
        ("w3", "open", at(3, 12)),
        ("w3", "click", at(3, 12, 5)),
        ("w5", "bounce", at(2, 11, 2)),
        ("w6", "spamreport", at(3, 8)),
        ("w6", "unsubscribe", at(3, 8, 1)),
        ("w7", "open", at(3, 14)),
        ("w7", "group_unsubscribe", at(3, 15)),
        ("w8", "open", at(9, 9)),  # after the period: left out
        ("n1", "seen", at(4, 10)),
        ("n1", "clicked", at(4, 10, 1)),
        ("n2", "seen", at(4, 11)),
        ("n2", "dismissed", at(4, 11, 1)),
        ("n3", "seen", at(5, 10)),
        ("n3", "seen", at(5, 11)),
    ]
    step_of = {d["id"]: (d["step_id"], d["contact_id"]) for d in deliveries}
    response_rows = [
        {
            "delivery_id": delivery,
            "contact_id": step_of[delivery][1],
            "journey_id": "onb",
            "step_id": step_of[delivery][0],
            "kind": kind,
            "occurred_at": when,
            "data": {},
        }
        for delivery, kind, when in responses
    ]
    milestones = [
        {"contact_id": cid, "name": "first_report", "reached_at": signups[cid] + timedelta(days=days)}
        for cid, days in (("c1", 3), ("c2", 10), ("c3", 20), ("c7", 10), ("h1", 7), ("c0", 2))
    ]
    milestones.append({"contact_id": "c4", "name": "other_milestone", "reached_at": at(5)})
    snapshots = [
        _snap(date(2026, 2, 28), "contact", "s1", 70, "green"),
        _snap(date(2026, 3, 7), "contact", "s1", 20, "red"),
        _snap(date(2026, 2, 28), "contact", "s2", 20, "red"),
        _snap(date(2026, 3, 7), "contact", "s2", 10, "red"),
        _snap(date(2026, 2, 28), "contact", "s3", 40, "yellow"),
        _snap(date(2026, 3, 7), "contact", "s3", 25, "red"),
        _snap(date(2026, 3, 7), "contact", "s4", 5, "red"),
        _snap(date(2026, 3, 7), "contact", "s5", 80, "green"),
        _snap(date(2026, 3, 1), "contact", "s1", 75, "green"),
        _snap(date(2026, 2, 28), "account", "a1", 45, "yellow"),
        _snap(date(2026, 3, 7), "account", "a1", 28, "red"),
    ]
    with db.begin() as conn:
        conn.execute(insert(schema.accounts), accounts)
        conn.execute(insert(schema.contacts), contacts)
        conn.execute(insert(schema.enrollments), enrollments)
        conn.execute(insert(schema.deliveries), deliveries)
        conn.execute(insert(schema.responses), response_rows)
        conn.execute(insert(schema.milestones), milestones)
        conn.execute(insert(schema.score_snapshots), snapshots)


def _enrollment(
    n: int, journey: str, cid: str, when: datetime, *, holdout: bool, converted: bool
) -> dict[str, Any]:
    return {
        "id": n,
        "journey_id": journey,
        "subject_id": cid,
        "account_id": "acme",
        "holdout": holdout,
        "state": "ended" if converted else "active",
        "outcome": "converted" if converted else None,
        "entered_at": when,
        "ended_at": when + timedelta(days=3) if converted else None,
    }


def _delivery(
    id_: str,
    enrollment: int,
    step: str,
    channel: str,
    cid: str,
    status: str,
    sent: datetime | None,
    updated: datetime,
    reason: str | None = None,
    hold: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id_,
        "enrollment_id": enrollment,
        "journey_id": "onb",
        "step_id": step,
        "channel": channel,
        "recipient": cid,
        "contact_id": cid,
        "status": status,
        "status_reason": reason,
        "hold_code": hold,
        "due_at": updated,
        "created_at": updated - timedelta(hours=1),
        "updated_at": updated,
        "sent_at": sent,
    }


def _snap(day: date, kind: str, subject: str, value: float, band: str) -> dict[str, Any]:
    return {"day": day, "subject_type": kind, "subject_id": subject, "value": value, "band": band}
