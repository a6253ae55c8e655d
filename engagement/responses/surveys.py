"""Survey answers: check one at the door, then record it (one per delivery; answering again updates it).

Every first answer is also an `answered` response, so it feeds reports and the engagement score; the
`survey_answer` row carries the score, which the `survey` condition and the nps/csat metrics read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from engagement import errors, values, vocab
from engagement.delivery import survey_links
from engagement.store import schema
from engagement.store.database import Database

SENT = (
    vocab.DeliveryStatus.SENT,
    vocab.DeliveryStatus.DELIVERED,
    vocab.DeliveryStatus.DEFERRED,
    vocab.DeliveryStatus.IN_DOUBT,
)


class AnswerError(errors.EngagementError):
    """This survey answer cannot be recorded."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Survey:
    """The survey delivery an answer is for."""

    delivery_id: str
    contact_id: str
    account_id: str
    journey_id: str
    step_id: str
    kind: str


@dataclass(frozen=True)
class Answer:
    """A checked answer."""

    score: int
    comment: str | None


def find(conn: Connection, delivery_id: str) -> Survey | None:
    """The sent survey delivery with this id whose contact still exists, or None."""
    d, c = schema.deliveries.c, schema.contacts.c
    row = conn.execute(
        select(d.id, d.contact_id, c.account_id, d.journey_id, d.step_id, d.survey_kind)
        .join_from(schema.deliveries, schema.contacts, c.id == d.contact_id)
        .where(d.id == delivery_id, d.survey_kind.is_not(None), d.status.in_(SENT), c.erased_at.is_(None))
    ).first()
    return None if row is None else Survey(*row)


def check(kind: str, score: Any, comment: Any, max_comment: int) -> Answer:
    """The answer if its score is on the kind's scale and its comment is storable text; else AnswerError."""
    scale = survey_links.scale(kind)
    if isinstance(score, str) and score.strip().lstrip("-").isdigit():
        score = int(score.strip())  # a form field
    if isinstance(score, bool) or not isinstance(score, int):
        raise AnswerError(
            "score", f"a whole number from {scale.start} to {scale.stop - 1}, got {score!r:.40}"
        )
    if score not in scale:
        raise AnswerError("score", f"{kind} scores run from {scale.start} to {scale.stop - 1}, got {score}")
    if comment is not None and not isinstance(comment, str):
        raise AnswerError("comment", "text, or leave it out")
    text = (comment or "").strip()
    if len(text) > max_comment:
        raise AnswerError("comment", f"at most {max_comment} characters, got {len(text)}")
    wrong = values.text_problem(text)
    if wrong is not None:
        raise AnswerError("comment", wrong)
    return Answer(score, text or None)


def record(
    db: Database, conn: Connection, survey: Survey, answer: Answer, now: datetime, source: str
) -> bool:
    """Store the answer (a repeat replaces score and comment); True when it is the delivery's first."""
    row = {
        "delivery_id": survey.delivery_id,
        "contact_id": survey.contact_id,
        "account_id": survey.account_id,
        "journey_id": survey.journey_id,
        "step_id": survey.step_id,
        "kind": survey.kind,
        "score": answer.score,
        "comment": answer.comment,
        "answered_at": now,
    }
    if not db.insert_ignore(conn, schema.survey_answers, [row], ["delivery_id"]):
        a = schema.survey_answers.c
        conn.execute(
            update(schema.survey_answers)
            .where(a.delivery_id == survey.delivery_id)
            .values(score=answer.score, comment=answer.comment, answered_at=now)
        )
        return False
    response = {
        "delivery_id": survey.delivery_id,
        "contact_id": survey.contact_id,
        "journey_id": survey.journey_id,
        "step_id": survey.step_id,
        "kind": vocab.ResponseKind.ANSWERED,
        "occurred_at": now,
        "dedupe_key": f"survey:{survey.delivery_id}",
        "simulated": False,
        "data": {"source": source, "score": answer.score},
    }
    db.insert_ignore(conn, schema.responses, [response], ["dedupe_key"])
    return True


def current(conn: Connection, delivery_id: str) -> tuple[int, str | None] | None:
    """The recorded (score, comment) of a survey delivery, if answered."""
    a = schema.survey_answers.c
    row = conn.execute(select(a.score, a.comment).where(a.delivery_id == delivery_id)).first()
    return None if row is None else (int(row[0]), row[1])
