"""Simulated revenue for the demo: a deterministic year of MRR rows per account, every row `source = demo`.

Before the simulated days: paying accounts start paying at signup (or convert from free a few weeks in),
some expand or contract on the way, a few churn and come back, and each anniversary renews with the next
`renewal_date`; cancelled accounts paid and churned, a few free accounts paid and fell back to free. Every
account's MRR at the start is its `mrr` in accounts.csv. During the simulated days: signups on a paid
plan are new business, a few accounts expand or contract, and every renewal that falls due renews or
churns. Accounts the renewal journey treated renew more often than its holdout (`RENEW`): a simulated
effect of the journey, so the demo's report can show a retention lift. Draws come from a
`random.Random` per account, seeded by its id, so the rows never depend on the order of anything else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from engagement.dryrun.demo.dataset import Row
from engagement.store import revenue_months, schema
from engagement.store.database import Database

SOURCE = "demo"
RENEWAL_JOURNEY = "upcoming-renewal"
# the simulated effect: the chance a renewal due in the simulated days renews, by what the journey did
RENEW = {"treated": 0.93, "holdout": 0.72, "not enrolled": 0.80}
YEAR = timedelta(days=365)
PAYING = ("starter", "pro", "business", "enterprise")
revenue = schema.table(schema.Revenue)


@dataclass
class _Account:
    id: str
    plan: str
    mrr: float
    signed_up_at: datetime
    renewal_date: date | None


def history(accounts: list[Row], start: datetime, end: datetime, seed: int = 7) -> list[Row]:
    """Every row that does not depend on the simulation: the past up to `start`, and the simulated days'
    new business, expansions and contractions (renewals due then: `renewals`)."""
    rows: list[Row] = []
    for account in map(_account, accounts):
        rng = random.Random(f"{seed}:revenue:{account.id}")
        if account.signed_up_at >= start:
            if account.plan in PAYING and account.signed_up_at <= end:  # new business
                rows.append(
                    _row(account.id, account.signed_up_at, account.mrr, account.plan, account.renewal_date)
                )
            continue
        rows += _past(rng, account, start)
        if account.plan in PAYING:
            rows += _drift(rng, account, start, min(end, _due(account) or end))
    return rows


def renewals(
    accounts: list[Row],
    groups: dict[str, str],
    current: dict[str, float],
    start: datetime,
    end: datetime,
    seed: int = 7,
) -> list[Row]:
    """Each renewal due in (start, end]: renewed for a year at its current MRR, or churned (MRR 0).

    `groups` names each account's part in the renewal journey (treated, holdout; missing: not enrolled).
    """
    rows: list[Row] = []
    for account in map(_account, accounts):
        due = _due(account)
        if (
            account.plan not in PAYING
            or account.signed_up_at >= start
            or due is None
            or not start < due <= end
        ):
            continue
        assert account.renewal_date is not None
        rng = random.Random(f"{seed}:renewal:{account.id}")
        if rng.random() < RENEW[groups.get(account.id, "not enrolled")]:
            next_renewal = _anniversary(account.renewal_date, 1)
            rows.append(
                _row(account.id, due, current.get(account.id, account.mrr), account.plan, next_renewal)
            )
        else:
            rows.append(_row(account.id, due, 0.0, "cancelled", None))
    return rows


def record(db: Database, accounts: list[Row], start: datetime, end: datetime, seed: int = 7) -> int:
    """Write the demo's revenue: the history, then the renewals, which depend on what the journey did."""
    en = schema.enrollments
    past = history(accounts, start, end, seed)
    with db.begin() as conn:
        entered = conn.execute(
            select(en.c.subject_id, en.c.holdout, en.c.entered_at).where(en.c.journey_id == RENEWAL_JOURNEY)
        ).all()
    first: dict[str, tuple[bool, datetime]] = {}
    for subject, held, entered_at in sorted(entered, key=lambda r: (r.entered_at, r.subject_id)):
        first.setdefault(subject, (held, entered_at))
    groups = {a: "holdout" if held else "treated" for a, (held, _) in first.items()}
    current: dict[str, float] = {}
    for row in sorted(past, key=lambda r: (str(r["account_id"]), _at(r))):
        current[str(row["account_id"])] = float(row["mrr"])  # type: ignore[arg-type]
    rows = past + renewals(accounts, groups, current, start, end, seed)
    with db.begin() as conn:
        written = db.insert_ignore(conn, revenue, rows, ["account_id", "effective_at"])
        revenue_months.refresh(conn, (str(row["account_id"]) for row in rows))
        return written


def _account(row: Row) -> _Account:
    signed, renewal, mrr = row["signed_up_at"], row.get("renewal_date"), row.get("mrr") or 0.0
    assert isinstance(signed, datetime) and isinstance(mrr, int | float)
    assert renewal is None or isinstance(renewal, date)
    return _Account(str(row["id"]), str(row["plan"]), float(mrr), signed, renewal)


def _row(account_id: str, at: datetime, mrr: float, plan: str, renewal: date | None) -> Row:
    return {
        "account_id": account_id,
        "effective_at": at,
        "mrr": round(mrr, 2),
        "plan": plan,
        "renewal_date": renewal,
        "source": SOURCE,
        "recorded_at": at,
    }


def _at(row: Row) -> datetime:
    moment = row["effective_at"]
    assert isinstance(moment, datetime)
    return moment


def _due(account: _Account) -> datetime | None:
    """The instant its renewal falls due: midnight UTC of its renewal date."""
    return None if account.renewal_date is None else datetime.combine(account.renewal_date, time(), UTC)


def _anniversary(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _between(rng: random.Random, first: datetime, last: datetime) -> datetime:
    """A moment in [first, last), to the second."""
    return first + timedelta(seconds=int(rng.random() * max(0.0, (last - first).total_seconds())))


def _past(rng: random.Random, account: _Account, start: datetime) -> list[Row]:
    """What the account paid from signup until `start`, ending at its `mrr` then."""
    signed, plan = account.signed_up_at, account.plan
    if plan in PAYING:
        final, paid_plan = account.mrr, plan
    elif plan == "cancelled" or (
        plan == "free" and rng.random() < 0.12 and start - signed > timedelta(days=90)
    ):
        final, paid_plan = 0.0, "starter" if rng.random() < 0.6 else "pro"
    else:
        return []  # never paid
    converts = plan in PAYING and start - signed > timedelta(days=60) and rng.random() < 0.25
    began = signed + timedelta(days=rng.randint(7, 45)) if converts else signed  # a free trial, then paid
    last = start - timedelta(days=1)
    events: list[tuple[datetime, str]] = []
    if final == 0.0:  # cancelled, or back to free, at least a month after it began paying
        first_mrr = round(rng.uniform(29, 99) if paid_plan == "starter" else rng.uniform(149, 799), 2)
        events.append((_between(rng, min(began + timedelta(days=30), last), last), "churn"))
    else:
        draw = rng.random()
        first_mrr = final
        if draw >= 0.55 and last - began > timedelta(days=30):  # an expansion or a contraction on the way
            first_mrr = round(
                final / rng.uniform(1.1, 1.6) if draw < 0.85 else final * rng.uniform(1.1, 1.4), 2
            )
            events.append((_between(rng, began + timedelta(days=20), last), "change"))
        if rng.random() < 0.05 and start - began > timedelta(days=120):  # churned, then came back
            gone = _between(rng, began + timedelta(days=30), start - timedelta(days=60))
            events += [(gone, "gone"), (gone + timedelta(days=rng.randint(14, 50)), "back")]
    years = 1
    while (renewal := datetime.combine(_anniversary(signed.date(), years), time(), UTC)) < start:
        events.append((renewal, "renew"))
        years += 1
    rows = [_row(account.id, began, first_mrr, paid_plan, _renewal_after(signed, began))]
    mrr, plan_now, owed = first_mrr, paid_plan, first_mrr
    for moment, kind in sorted(events):
        if kind == "change" and mrr == 0:
            owed = final  # it comes back at the new price
            continue
        if kind == "renew" and (mrr == 0 or moment <= began):
            continue
        if kind in ("change", "back"):
            mrr, plan_now = (final, plan) if kind == "change" else (owed, plan_now)
        elif kind == "gone":
            owed, mrr = mrr, 0.0
        elif kind == "churn":
            mrr = 0.0
        name = plan_now if mrr else ("cancelled" if kind == "gone" else plan)
        rows.append(_row(account.id, moment, mrr, name, _renewal_after(signed, moment) if mrr else None))
    return _distinct(rows)


def _renewal_after(signed: datetime, moment: datetime) -> date:
    """The first anniversary of the signup after `moment`'s day."""
    years = 1
    while (day := _anniversary(signed.date(), years)) <= moment.date():
        years += 1
    return day


def _drift(rng: random.Random, account: _Account, start: datetime, until: datetime) -> list[Row]:
    """A few paying accounts expand or contract during the simulated days (before any renewal falls due)."""
    draw = rng.random()
    if draw >= 0.09 or until <= start:
        return []
    factor = rng.uniform(1.1, 1.5) if draw < 0.06 else rng.uniform(0.6, 0.9)
    moment = _between(rng, start + timedelta(hours=1), until)
    return [_row(account.id, moment, account.mrr * factor, account.plan, account.renewal_date)]


def _distinct(rows: list[Row]) -> list[Row]:
    """One row per instant (the later one wins), in time order."""
    by_time: dict[datetime, Row] = {}
    for row in rows:
        by_time[_at(row)] = row
    return [by_time[t] for t in sorted(by_time)]
