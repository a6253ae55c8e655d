"""Survey deliveries and answers written straight into the tables, and a hand-built week of them.

Period: 2026-03-01 to 2026-03-07 (UTC). Journey `nps` asks NPS at step `nps-day-90` (and sends a
`welcome` email that is no survey); journey `support` asks CSAT at `csat-ticket`; journey `quiet`
declares an NPS step nobody has answered yet. The figures each test expects are worked out in
tests/test_report_surveys.py next to the assertion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from engagement.reports.build import JourneyInfo
from engagement.reports.period import between
from engagement.store import schema
from engagement.store.database import Database

PERIOD = between("2026-03-01", "2026-03-07")
NOW = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
KNOWN = {
    "nps": JourneyInfo("nps", "NPS at 90 days", "contact", None, (("nps-day-90", "nps"),)),
    "support": JourneyInfo("support", "Support", "contact", None, (("csat-ticket", "csat"),)),
    "quiet": JourneyInfo("quiet", "Quiet", "contact", None, (("ask", "nps"),)),
}
ACCOUNTS = {"tech-co": "tech", "low-co": "low", "big-co": "high"}


def at(day: int, hour: int = 10, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class Surveys:
    """Writes survey deliveries and answers as the survey step would leave them."""

    db: Database
    enrollments: int = 0

    def accounts(self, touch_by_account: dict[str, str]) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(schema.accounts),
                [{"id": a, "name": a, "touch": t} for a, t in touch_by_account.items()],
            )

    def contact(self, contact_id: str, account_id: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(schema.contacts),
                [{"id": contact_id, "account_id": account_id, "email": f"{contact_id}@x.example"}],
            )

    def delivery(
        self, delivery_id: str, journey: str, step: str, contact: str, sent: datetime, channel: str = "email"
    ) -> None:
        """One sent message of `step` to `contact`, in an enrollment of its own."""
        self.enrollments += 1
        row: dict[str, Any] = {
            "id": delivery_id,
            "enrollment_id": self.enrollments,
            "journey_id": journey,
            "step_id": step,
            "channel": channel,
            "recipient": contact,
            "contact_id": contact,
            "status": "sent",
            "due_at": sent,
            "created_at": sent - timedelta(minutes=5),
            "updated_at": sent,
            "sent_at": sent,
        }
        with self.db.begin() as conn:
            conn.execute(insert(schema.deliveries), [row])

    def answer(
        self,
        delivery_id: str,
        score: int,
        answered: datetime,
        *,
        comment: str | None = None,
        kind: str = "nps",
    ) -> None:
        """The answer to a delivery, with the delivery's journey, step and contact."""
        d = schema.deliveries
        with self.db.begin() as conn:
            journey, step, contact = conn.execute(
                d.select()
                .with_only_columns(d.c.journey_id, d.c.step_id, d.c.contact_id)
                .where(d.c.id == delivery_id)
            ).one()
            account = conn.execute(
                schema.contacts.select()
                .with_only_columns(schema.contacts.c.account_id)
                .where(schema.contacts.c.id == contact)
            ).scalar_one()
            conn.execute(
                insert(schema.survey_answers),
                [
                    {
                        "delivery_id": delivery_id,
                        "contact_id": contact,
                        "account_id": account,
                        "journey_id": journey,
                        "step_id": step,
                        "kind": kind,
                        "score": score,
                        "comment": comment,
                        "answered_at": answered,
                    }
                ],
            )


def seed(db: Database) -> None:
    """The hand-built week."""
    s = Surveys(db)
    s.accounts(ACCOUNTS)
    people = {
        **{f"t{i}": "tech-co" for i in range(1, 8)},
        **{f"l{i}": "low-co" for i in range(1, 5)},
        "h1": "big-co",
        "q1": "tech-co",
    }
    for contact, account in people.items():
        s.contact(contact, account)
    nps = ("nps", "nps-day-90")
    # tech tier
    s.delivery("t1-a", *nps, "t1", at(1))
    s.answer("t1-a", 9, at(2))
    s.delivery("t1-b", *nps, "t1", at(3))  # asked again (a second enrollment): the later answer counts
    s.answer("t1-b", 3, at(4), comment="Too slow, sadly")
    s.delivery("t2", *nps, "t2", at(1))
    s.answer("t2", 10, at(2), comment='=HYPERLINK("http://x.example")')
    s.delivery("t3-a", *nps, "t3", at(2))
    s.delivery("t3-b", *nps, "t3", at(2, 11))
    s.answer("t3-a", 4, at(5, 12))  # the same instant: the greater delivery id (t3-b, 8) wins
    s.answer("t3-b", 8, at(5, 12))
    s.delivery("t4", *nps, "t4", at(3))
    s.answer("t4", 7, at(3, 15), comment="Fine,\nmostly")
    s.delivery("t5", *nps, "t5", at(4))  # never answered
    s.delivery("t6", *nps, "t6", at(2))
    s.answer("t6", 10, at(8))  # answered after the period: an answer to a message sent in it, no NPS vote
    s.delivery("t7", *nps, "t7", at(20, month=2))  # sent before the period, answered in it
    s.answer("t7", 0, at(2))
    s.delivery("w-t1", "nps", "welcome", "t1", at(1))  # an email step, not a survey
    # low tier
    for contact, score in (("l1", 9), ("l2", 6), ("l4", 10)):
        s.delivery(contact, *nps, contact, at(2))
        s.answer(contact, score, at(3))
    s.delivery("l3", *nps, "l3", at(2))
    # high tier: asked, nobody answered
    s.delivery("h1", *nps, "h1", at(2))
    # CSAT
    csat = ("support", "csat-ticket")
    s.delivery("c-l1", *csat, "l1", at(2), channel="in_app")
    s.answer("c-l1", 5, at(2, 12), kind="csat")
    s.delivery("c-l2", *csat, "l2", at(2), channel="in_app")
    s.answer("c-l2", 4, at(2, 12), kind="csat")
    s.delivery("c-l2-b", *csat, "l2", at(4), channel="in_app")
    s.answer("c-l2-b", 2, at(4, 12), kind="csat")
    s.delivery("c-t1", *csat, "t1", at(3), channel="in_app")
    s.answer("c-t1", 3, at(3, 12), kind="csat")
    # a declared survey step with no answer at all
    s.delivery("q1", "quiet", "ask", "q1", at(3))
