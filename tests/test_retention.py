"""Every monthly figure of the retention report, against hand-computed numbers (tests/revenue_world.py),
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from backends import url_for
from revenue_world import NOW, seed

from engagement import vocab
from engagement.reports import months, retention
from engagement.reports.retention import Month, RetentionReport, Series
from engagement.store import database, schema

ADDITIVE = (
    "start_mrr",
    "new",
    "reactivation",
    "expansion",
    "contraction",
    "churned",
    "end_mrr",
    "paying_at_start",
    "new_accounts",
    "reactivated_accounts",
    "churned_accounts",
    "renewals_due",
    "renewed",
)


@pytest.fixture(scope="module")
def db(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[database.Database]:
    """The six accounts, on each backend."""
    folder = tmp_path_factory.mktemp("retention") if backend == "sqlite" else None
    made = database.Database(url_for(backend, folder))
    schema.metadata.drop_all(made.engine)
    made.create_all()
    try:
        seed(made)
        yield made
    finally:
        schema.metadata.drop_all(made.engine)
        made.dispose()


def report(db: database.Database, first: str, last: str, by: str | None = None) -> RetentionReport:
    return retention.build(db, months.choose(NOW, first, last), NOW, vocab.RetentionBy(by) if by else None)


def month(
    label: str,
    start: float,
    end: float,
    paying: int,
    *,
    new: float = 0.0,
    reactivation: float = 0.0,
    expansion: float = 0.0,
    contraction: float = 0.0,
    churned: float = 0.0,
    accounts: tuple[int, int, int] = (0, 0, 0),
    renewals: tuple[int, int] = (0, 0),
    logo: float | None = 0.0,
) -> Month:
    """A month as it must read; GRR and NRR from the contract's formulas (n/a when nothing paid at a)."""
    kept = start - contraction - churned
    due, renewed = renewals
    return Month(
        month=label,
        start_mrr=start,
        new=new,
        reactivation=reactivation,
        expansion=expansion,
        contraction=contraction,
        churned=churned,
        end_mrr=end,
        paying_at_start=paying,
        new_accounts=accounts[0],
        reactivated_accounts=accounts[1],
        churned_accounts=accounts[2],
        renewals_due=due,
        renewed=renewed,
        grr=kept / start if start else None,
        nrr=(kept + expansion) / start if start else None,
        logo_churn=logo if paying else None,
        renewal_rate=renewed / due if due else None,
    )


TOTAL = [
    # B churns (50), D is new (80); nothing is due (A's renewal is in February)
    month("2026-01", 390, 420, 4, new=80, churned=50, accounts=(1, 0, 1), logo=0.25),
    # C: 200 → 300 → 150 is a contraction of 50; D's 120 from March 1st 00:00 is February's (b ≤ t)
    month("2026-02", 420, 410, 4, expansion=40, contraction=50, renewals=(1, 1)),
    # B comes back (reactivation), E churns on its renewal date (due, not renewed)
    month(
        "2026-03", 410, 430, 4, reactivation=60, churned=40, accounts=(0, 1, 1), renewals=(1, 0), logo=0.25
    ),
    # F paid in 2025, before the range: its return is a reactivation, not new business
    month("2026-04", 430, 460, 4, reactivation=30, accounts=(0, 1, 0)),
]


def test_every_monthly_figure_of_the_whole_base_is_the_hand_computed_one(db: database.Database) -> None:
    made = report(db, "2026-01", "2026-04")

    assert made.total.months == TOTAL
    assert made.groups == [] and made.by is None
    assert made.in_progress == "2026-04"


def test_the_compounded_rates_are_the_product_of_the_monthly_ones(db: database.Database) -> None:
    compounded = report(db, "2026-01", "2026-04").total.compounded

    assert compounded.grr == pytest.approx(340 / 390 * 370 / 420 * 370 / 410 * 1.0)
    assert compounded.nrr == pytest.approx(340 / 390 * 410 / 420 * 370 / 410 * 1.0)
    assert compounded.months == 4


def test_a_range_inside_the_history_starts_from_the_mrr_then(db: database.Database) -> None:
    [february] = report(db, "2026-02", "2026-02").total.months

    assert february == TOTAL[1]


def test_months_with_no_paying_accounts_show_rates_as_na_and_compound_over_none(
    db: database.Database,
) -> None:
    made = report(db, "2025-01", "2025-02")  # B's first row is at 2025-03-01 00:00: February's end

    assert made.total.months == [
        month("2025-01", 0, 0, 0, logo=None),
        month("2025-02", 0, 50, 0, new=50, accounts=(1, 0, 0), logo=None),
    ]
    assert [(m.grr, m.nrr, m.logo_churn, m.renewal_rate) for m in made.total.months] == [(None,) * 4] * 2
    assert made.total.compounded == retention.Compounded(grr=None, nrr=None, months=0)


def _groups(made: RetentionReport) -> dict[str, Series]:
    return {s.group: s for s in made.groups}


def test_by_plan_uses_the_plan_at_the_start_or_at_the_end_for_accounts_not_paying_then(
    db: database.Database,
) -> None:
    found = _groups(report(db, "2026-01", "2026-04", "plan"))

    assert sorted(found) == ["business", "starter", "team"]  # B's churn row names no plan, and moves nothing
    assert found["business"].months == [
        month("2026-01", 200, 200, 1),
        month("2026-02", 200, 150, 1, contraction=50),  # C leaves for team at the month's end
        month("2026-03", 0, 0, 0, logo=None),
        month("2026-04", 0, 0, 0, logo=None),
    ]
    assert found["team"].months == [
        month("2026-01", 100, 180, 1, new=80, accounts=(1, 0, 0)),  # D's plan as of b
        month("2026-02", 180, 220, 2, expansion=40, renewals=(1, 1)),
        month("2026-03", 370, 430, 3, reactivation=60, accounts=(0, 1, 0)),  # C arrived; B back on team
        month("2026-04", 430, 430, 4),
    ]
    assert found["starter"].months == [
        month("2026-01", 90, 40, 2, churned=50, accounts=(0, 0, 1), logo=0.5),
        month("2026-02", 40, 40, 1),
        month("2026-03", 40, 0, 1, churned=40, accounts=(0, 0, 1), renewals=(1, 0), logo=1.0),
        month("2026-04", 0, 30, 0, reactivation=30, accounts=(0, 1, 0), logo=None),
    ]
    assert found["business"].compounded == retention.Compounded(grr=0.75, nrr=0.75, months=2)


def test_by_touch_uses_the_accounts_tier(db: database.Database) -> None:
    found = _groups(report(db, "2026-01", "2026-04", "touch"))

    assert sorted(found) == ["high", "low", "tech"]
    assert found["high"].months[0] == month("2026-01", 0, 80, 0, new=80, accounts=(1, 0, 0), logo=None)
    assert [m.end_mrr for m in found["tech"].months] == [340, 290, 250, 250]
    assert [m.end_mrr for m in found["low"].months] == [0, 0, 60, 90]


def test_by_cohort_uses_the_signup_month(db: database.Database) -> None:
    found = _groups(report(db, "2026-01", "2026-04", "cohort"))

    assert sorted(found) == ["2025-03", "2025-04", "2025-05", "2025-06", "2025-11", "2026-01"]
    assert [m.start_mrr for m in found["2025-11"].months] == [200, 200, 150, 150]
    assert found["2025-05"].months[3].reactivation == 30


@pytest.mark.parametrize("by", [b.value for b in vocab.RetentionBy])
def test_every_split_sums_to_the_totals_of_the_unsplit_report(db: database.Database, by: str) -> None:
    whole = report(db, "2026-01", "2026-04")
    split = report(db, "2026-01", "2026-04", by)

    for i, total in enumerate(whole.total.months):
        for name in ADDITIVE:
            parts = sum(getattr(s.months[i], name) for s in split.groups)
            assert parts == pytest.approx(getattr(total, name)), (by, total.month, name)
    assert split.total.months == whole.total.months


def test_a_month_boundary_instant_belongs_to_the_month_it_ends(db: database.Database) -> None:
    [january] = report(db, "2025-01", "2025-01").total.months
    [march] = report(db, "2025-03", "2025-03").total.months

    assert (january.new, january.end_mrr) == (0, 0)
    assert march.start_mrr == 50  # B's row at 2025-03-01 00:00 is paying at March's first instant
