"""What `engagement health` and the account page show: bands by tier with MRR, drops, one account's card.

Read from the stored refresh (`health_score`, `health_measure`, `health_snapshot`); MRR is each account's
at `now` from its revenue rows (none: 0). Every figure is one set-based query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Float, func, literal, select

from engagement.health import cards as scorecards
from engagement.reports import journey_retention
from engagement.store import schema

BANDS = ("green", "yellow", "red", "unknown")
TIERS = ("high", "low", "tech")
hs, hm, snap, acc = (
    schema.health_scores.c,
    schema.health_measures.c,
    schema.health_snapshots.c,
    schema.accounts.c,
)


@dataclass(frozen=True)
class BandRow:
    """Accounts and MRR of one band in one touch tier."""

    band: str
    touch: str
    accounts: int
    mrr: float


@dataclass(frozen=True)
class Drop:
    """An account whose score fell over the window: then, now, and its MRR."""

    account_id: str
    name: str
    touch: str
    before: float
    after: float
    mrr: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class MeasureRow:
    """One measure of an account's scorecard: value (None: none), points (None: skipped), weight, share.

    `share` is the measure's part of the score: weight * points / sum of the weights of the counted measures, so the
    shares of an account's measures add up to its score.
    """

    id: str
    metric: str
    value: float | None
    points: float | None
    weight: float
    share: float | None


@dataclass(frozen=True)
class AccountHealth:
    """One account's scorecard health as stored by the last refresh."""

    account_id: str
    scorecard_id: str | None
    scorecard_name: str
    score: float | None
    band: str
    changed_at: datetime | None
    measures: list[MeasureRow]


def _mrr(now: datetime) -> Any:
    return journey_retention.mrr_at(acc.id, now)


def bands(conn: Connection, now: datetime) -> list[BandRow]:
    """Accounts and MRR per band and touch tier ("MRR at risk" is the red rows' MRR)."""
    per = (
        select(hs.band, acc.touch, _mrr(now).label("mrr"))
        .select_from(schema.health_scores.join(schema.accounts, acc.id == hs.account_id))
        .subquery("per")
    )
    rows = conn.execute(
        select(per.c.band, per.c.touch, func.count(), func.coalesce(func.sum(per.c.mrr), 0.0)).group_by(
            per.c.band, per.c.touch
        )
    )
    return [BandRow(band, touch, int(n), float(mrr)) for band, touch, n, mrr in rows]


def drops(
    conn: Connection, now: datetime, within: timedelta = timedelta(days=14), limit: int = 20
) -> list[Drop]:
    """Accounts whose score now is below their snapshot `within` ago, the largest MRR first."""
    then = (now - within).date()
    query = (
        select(acc.id, acc.name, acc.touch, snap.score, hs.score, _mrr(now).label("mrr"))
        .select_from(
            schema.health_scores.join(schema.accounts, acc.id == hs.account_id).join(
                schema.health_snapshots, (snap.account_id == hs.account_id) & (snap.day == then)
            )
        )
        .where(hs.score < snap.score)
        .order_by(literal(0.0, Float) - _mrr(now), (hs.score - snap.score), acc.id)
        .limit(limit)
    )
    return [Drop(i, n, t, float(b), float(a), float(m)) for i, n, t, b, a, m in conn.execute(query)]


def account_health(conn: Connection, cards: scorecards.Cards, account_id: str) -> AccountHealth | None:
    """The scorecard health of one account for its page: the scorecard that applies, score, band, and each
    measure's value, points, weight and share of the score, as of the last refresh (`engagement health
    --refresh` or the scheduler's). None when the account has no stored health (never refreshed, or no
    such account). The dashboard's `/accounts/{id}` page calls this."""
    row = conn.execute(select(schema.health_scores).where(hs.account_id == account_id)).mappings().first()
    if row is None:
        return None
    card = cards.get(row["scorecard_id"]) if row["scorecard_id"] else None
    measured = select(schema.health_measures).where(hm.account_id == account_id)
    found = {m.measure_id: m for m in conn.execute(measured)}
    counted = sum(m.weight for m in found.values() if m.points is not None)
    measures = []
    for spec_measure in card.spec.measures if card else []:
        m = found.get(spec_measure.id)
        if m is None:
            continue
        share = None if m.points is None or not counted else m.weight * m.points / counted
        measures.append(
            MeasureRow(m.measure_id, spec_measure.metric.kind, m.value, m.points, m.weight, share)
        )
    return AccountHealth(
        account_id,
        row["scorecard_id"],
        card.spec.name or card.id if card else "",
        row["score"],
        row["band"],
        row["changed_at"],
        measures,
    )
