"""The demo's health scorecards: the shipped ones, snapshotted weekly back over the simulated days, judged.

The scorecards are copied into the demo folder after the simulated days (so the journeys ran as before
and read the engagement bands), then health is computed as of each week from four weeks before the start
to the lead before the end (every metric reads only what happened by then), and finally at the end; the
calibration report (`engagement report health`) then says whether the bands had the renewals right.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from engagement import config
from engagement.health import calibration, compute, view
from engagement.health import cards as scorecards
from engagement.reports import months
from engagement.store.database import Database

WEEK = timedelta(days=7)


def summary(
    repo: Path, directory: Path, db: Database, settings: config.Settings, start: datetime, end: datetime
) -> list[str]:
    """Copy the scorecards, compute the health history, and the summary's health lines."""
    shutil.copytree(repo / "scorecards", directory / "scorecards")
    cards = scorecards.load(settings)
    cards.raise_problems()
    lead = settings.reports.calibration_lead
    at = start - 4 * WEEK + timedelta(minutes=20)
    while at <= end - lead:
        compute.snapshot(db, settings, cards, at)
        at += WEEK
    compute.snapshot(db, settings, cards, end)
    with db.begin() as conn:
        rows = view.bands(conn, end)
    counts: Counter[str] = Counter()
    for row in rows:
        counts[row.band] += row.accounts
    at_risk = sum(r.mrr for r in rows if r.band == "red")
    total = sum(counts.values()) or 1
    shares = ", ".join(f"{b} {counts[b]} ({100 * counts[b] / total:.0f}%)" for b in view.BANDS)
    first, last = months.number(start.year, start.month), months.number(end.year, end.month)
    made = calibration.build(db, months.Months(first, last), lead, end, settings.reports.min_sample)
    banded = ", ".join(f"{r.band} {r.renewed}/{r.due}" for r in made.rows if r.due and r.band != "none")
    return [
        f"Health at the end (scorecards {', '.join(c.id for c in cards.cards)}): accounts {shares}; "
        f"MRR at risk (red) {at_risk:,.0f}",
        f"  renewals by band {lead.days} days before (renewed/due): {banded or 'none'}; {made.verdict}",
    ]
