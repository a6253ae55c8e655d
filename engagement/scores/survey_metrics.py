"""The `nps` and `csat` metrics of health scorecards, set-based: each contact's latest answer in a window.

NPS = % promoters (9 to 10) - % detractors (0 to 6) of the account's contacts' latest NPS answers, from -100
to 100; CSAT = the mean of their latest CSAT answers (1 to 5). Each is one GROUP BY over `survey_answer`
(a window function picks each contact's latest answer), for every account at once; an account without an
answer in the window has no row (the scorecard's `missing` rule applies).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Float, Select, case, cast, func, select

from engagement import vocab
from engagement.store import schema

a = schema.survey_answers.c
PROMOTER = 9
DETRACTOR = 6


def latest_answers(kind: vocab.SurveyKind, now: datetime, within: timedelta) -> Any:
    """Subquery: each contact's latest answer of `kind` answered in (now - within, now] (account_id, score)."""
    rank = (
        func.row_number()
        .over(partition_by=a.contact_id, order_by=(a.answered_at.desc(), a.delivery_id.desc()))
        .label("rank")
    )
    ranked = (
        select(a.account_id, a.contact_id, a.score, rank)
        .where(a.kind == kind, a.answered_at <= now, a.answered_at > now - within)
        .subquery("ranked")
    )
    return select(ranked.c.account_id, ranked.c.score).where(ranked.c.rank == 1).subquery("latest")


def account_nps(now: datetime, within: timedelta) -> Select[Any]:
    """SELECT account_id, nps (-100 to 100), answers: one row per account with an NPS answer in the window."""
    latest = latest_answers(vocab.SurveyKind.NPS, now, within)
    n = func.count()
    promoters = func.sum(case((latest.c.score >= PROMOTER, 1), else_=0))
    detractors = func.sum(case((latest.c.score <= DETRACTOR, 1), else_=0))
    nps = cast(promoters - detractors, Float) * 100.0 / n
    return select(latest.c.account_id, nps.label("nps"), n.label("answers")).group_by(latest.c.account_id)


def account_csat(now: datetime, within: timedelta) -> Select[Any]:
    """SELECT account_id, csat (mean of 1 to 5), answers: one row per account with a CSAT answer in the window."""
    latest = latest_answers(vocab.SurveyKind.CSAT, now, within)
    mean = func.avg(cast(latest.c.score, Float))
    return select(latest.c.account_id, mean.label("csat"), func.count().label("answers")).group_by(
        latest.c.account_id
    )


def nps_by_account(conn: Connection, now: datetime, within: timedelta) -> dict[str, tuple[float, int]]:
    """account id → (NPS, answers counted)."""
    return {
        row.account_id: (float(row.nps), int(row.answers)) for row in conn.execute(account_nps(now, within))
    }


def csat_by_account(conn: Connection, now: datetime, within: timedelta) -> dict[str, tuple[float, int]]:
    """account id → (mean CSAT, answers counted)."""
    return {
        row.account_id: (float(row.csat), int(row.answers)) for row in conn.execute(account_csat(now, within))
    }
