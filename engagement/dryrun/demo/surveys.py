"""Simulated survey answers for the demo: a deterministic share of the survey messages sent gets an answer.

Each answer is decided by a hash of the seed and the delivery id (never by the order of rows or the
clock), so two demo runs write the same answers. Every answer's `answered` response is marked
simulated, and the summary says the NPS is from simulated answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from engagement import vocab
from engagement.reports import surveys
from engagement.reports.period import Period
from engagement.store import schema
from engagement.store.database import Database

ANSWER_SHARE = 0.35  # of survey messages sent
# NPS scores 0..10 and CSAT 1..5 by weight: a plausible spread with some detractors to follow up
NPS_WEIGHTS = (2, 1, 1, 2, 2, 4, 6, 10, 16, 26, 30)
TROUBLED_NPS_WEIGHTS = (8, 6, 8, 10, 12, 14, 14, 12, 8, 5, 3)  # accounts heading for churn: mostly detractors
CSAT_WEIGHTS = (0, 5, 8, 17, 40, 30)
COMMENTS = {
    "detractor": "[simulated] Reports take too long to set up.",
    "passive": "[simulated] Good, but the integrations could be easier.",
    "promoter": "[simulated] Our weekly report saves me an hour every Monday.",
}


def _draw(seed: int, delivery_id: str, what: str) -> float:
    """A number in [0, 1) fixed by the seed, the delivery and what it decides."""
    digest = hashlib.sha256(f"{seed}:{delivery_id}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _score(draw: float, weights: Sequence[int]) -> int:
    total, running = sum(weights), 0
    for score, weight in enumerate(weights):
        running += weight
        if draw * total < running:
            return score
    return len(weights) - 1


def _group(kind: str, score: int) -> str:
    if kind == vocab.SurveyKind.CSAT:
        return "promoter" if score >= surveys.SATISFIED_FROM else "detractor" if score <= 2 else "passive"
    if score >= surveys.PROMOTER_FROM:
        return "promoter"
    return "detractor" if score <= surveys.DETRACTOR_UP_TO else "passive"


def answer(
    db: Database,
    steps: dict[str, list[tuple[str, str]]],
    seed: int,
    end: datetime,
    troubled: frozenset[str] = frozenset(),
) -> int:
    """Answer a deterministic share of the survey messages sent before `end`; return how many answers were new.

    `steps` names the survey steps (journey -> [(step, kind)]); an answer comes 1 to 72 hours after the
    message and never after `end`. People of a `troubled` account (one that churns) answer NPS lower.
    """
    kinds = {(journey, step): kind for journey, found in steps.items() for step, kind in found}
    if not kinds:
        return 0
    d, c = schema.deliveries, schema.contacts
    with db.begin() as conn:
        sent = conn.execute(
            select(d.c.id, d.c.journey_id, d.c.step_id, d.c.contact_id, c.c.account_id, d.c.sent_at)
            .join(c, c.c.id == d.c.contact_id)
            .where(
                or_(*(and_(d.c.journey_id == j, d.c.step_id == s) for j, s in kinds)),
                d.c.status == vocab.DeliveryStatus.SENT,
                d.c.sent_at < end,
            )
            .order_by(d.c.id)
        ).all()
        answers: list[dict[str, Any]] = []
        responses: list[dict[str, Any]] = []
        for row in sent:
            at = row.sent_at + timedelta(hours=1 + int(71 * _draw(seed, row.id, "delay")))
            if _draw(seed, row.id, "answers") >= ANSWER_SHARE or at >= end:
                continue
            kind = kinds[(row.journey_id, row.step_id)]
            nps = TROUBLED_NPS_WEIGHTS if row.account_id in troubled else NPS_WEIGHTS
            weights = nps if kind == vocab.SurveyKind.NPS else CSAT_WEIGHTS
            score = _score(_draw(seed, row.id, "score"), weights)
            comment = COMMENTS[_group(kind, score)] if _draw(seed, row.id, "comment") < 0.5 else None
            answers.append(
                {
                    "delivery_id": row.id,
                    "contact_id": row.contact_id,
                    "account_id": row.account_id,
                    "journey_id": row.journey_id,
                    "step_id": row.step_id,
                    "kind": kind,
                    "score": score,
                    "comment": comment,
                    "answered_at": at,
                }
            )
            responses.append(
                {
                    "delivery_id": row.id,
                    "contact_id": row.contact_id,
                    "journey_id": row.journey_id,
                    "step_id": row.step_id,
                    "kind": vocab.ResponseKind.ANSWERED,
                    "occurred_at": at,
                    "dedupe_key": f"sim:{row.id}:answered",
                    "simulated": True,
                    "data": {"simulated": True, "score": score},
                }
            )
        written = db.insert_ignore(conn, schema.survey_answers, answers, ["delivery_id"])
        db.insert_ignore(conn, schema.responses, responses, ["dedupe_key"])
    return written


def summary(db: Database, steps: dict[str, list[tuple[str, str]]], period: Period) -> str:
    """One line per NPS survey step: its simulated answers and NPS, or why there is none."""
    with db.begin() as conn:
        found = surveys.figures(conn, period, None, steps)
    lines = []
    for journey, figures in sorted(found.items()):
        for f in figures:
            if f.touch != surveys.ALL_TIERS or f.kind != vocab.SurveyKind.NPS:
                continue
            if f.nps is None or f.nps_low is None or f.nps_high is None:
                lines.append(f"NPS {journey}/{f.step}: n/a ({f.sent} asked, nobody answered)")
                continue
            lines.append(
                f"NPS {journey}/{f.step} (simulated answers): {f.nps:+.0f} "
                f"(95% interval {f.nps_low:+.0f} to {f.nps_high:+.0f}) from {f.respondents} people; "
                f"{f.answered} of {f.sent} asked answered; {f.promoters} promoters, {f.passives} passives, "
                f"{f.detractors} detractors"
            )
    return "\n".join(lines) or "NPS: n/a (no survey step in the shipped journeys)"
