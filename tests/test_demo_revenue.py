"""The demo's simulated revenue: a deterministic, plausible history that agrees with the accounts."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from engagement.dryrun.demo import dataset, revenue
from engagement.dryrun.demo.dataset import Dataset, Row

START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=60)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return dataset.generate(start=START)


def _by_account(rows: list[Row]) -> dict[str, list[Row]]:
    found: dict[str, list[Row]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (str(r["account_id"]), str(r["effective_at"]))):
        found[str(row["account_id"])].append(row)
    return found


def _movements(rows: list[Row]) -> Counter[str]:
    """Each row's movement, as the retention report names them (PRODUCT.md, Movements)."""
    kinds: Counter[str] = Counter()
    for history in _by_account(rows).values():
        before, paid = 0.0, False
        for row in history:
            mrr = float(row["mrr"])  # type: ignore[arg-type]
            if before == 0 and mrr > 0:
                kinds["reactivation" if paid else "new business"] += 1
            elif before > 0 and mrr == 0:
                kinds["churn"] += 1
            elif mrr > before:
                kinds["expansion"] += 1
            elif mrr < before:
                kinds["contraction"] += 1
            elif row["renewal_date"] is not None:
                kinds["renewal"] += 1
            paid, before = paid or mrr > 0, mrr
    return kinds


def test_the_history_is_the_same_every_time_and_every_row_is_labelled_demo(data: Dataset) -> None:
    rows = revenue.history(data.accounts, START, END)

    assert rows == revenue.history(dataset.generate(start=START).accounts, START, END)
    assert {r["source"] for r in rows} == {"demo"}
    keys = [(r["account_id"], r["effective_at"]) for r in rows]
    assert len(keys) == len(set(keys))  # one row per (account, instant), as the table's key wants
    assert all(float(r["mrr"]) >= 0 for r in rows)  # type: ignore[arg-type]
    assert max(r["effective_at"] for r in rows) <= END  # type: ignore[type-var]
    assert min(r["effective_at"] for r in rows) <= END - timedelta(days=365)  # type: ignore[type-var]


def test_every_accounts_mrr_at_the_start_is_its_mrr_in_accounts_csv(data: Dataset) -> None:
    history = _by_account(revenue.history(data.accounts, START, END))

    for account in data.accounts:
        if account["signed_up_at"] >= START:  # type: ignore[operator]
            continue
        known = [r for r in history.get(str(account["id"]), []) if r["effective_at"] <= START]  # type: ignore[operator]
        at_start = float(known[-1]["mrr"]) if known else 0.0  # type: ignore[arg-type]
        assert at_start == (account["mrr"] or 0.0), account["id"]


def test_the_history_holds_every_kind_of_movement_in_plausible_numbers(data: Dataset) -> None:
    kinds = _movements(revenue.history(data.accounts, START, END))

    assert set(kinds) == {"new business", "expansion", "contraction", "churn", "reactivation", "renewal"}
    assert kinds["new business"] > 10 * kinds["reactivation"] > 0
    assert kinds["expansion"] > kinds["contraction"] > 0  # the base grows on balance


def test_renewals_due_in_the_simulated_days_renew_more_often_when_the_journey_treated_them(
    data: Dataset,
) -> None:
    due = [
        a
        for a in data.accounts
        if a["plan"] in revenue.PAYING and a["signed_up_at"] < START  # type: ignore[operator]
    ]
    every = [{**a, "renewal_date": (START + timedelta(days=1 + i % 59)).date()} for i, a in enumerate(due)]

    def renewed(group: str) -> float:
        rows = revenue.renewals(every, dict.fromkeys((str(a["id"]) for a in every), group), {}, START, END)
        assert len(rows) == len(every)
        return sum(float(r["mrr"]) > 0 for r in rows) / len(rows)  # type: ignore[arg-type]

    treated, held = renewed("treated"), renewed("holdout")
    assert treated == pytest.approx(revenue.RENEW["treated"], abs=0.06)
    assert held == pytest.approx(revenue.RENEW["holdout"], abs=0.06)
    assert treated > held


def test_the_summary_puts_the_months_retention_line_first_when_it_is_given() -> None:
    from engagement.dryrun.demo import run
    from engagement.reports.model import Retention, RetentionGroup

    treated = RetentionGroup("treatment", 10, 2, 8, 7, 800.0, 760.0)
    held = RetentionGroup("holdout", 3, 0, 3, 2, 300.0, 200.0)
    kept = Retention(
        59, treated, held, 7 / 8 - 2 / 3, -0.2, 0.6, 0.95 - 2 / 3, None, None, "not enough data yet", ""
    )

    lines = run.retention_lines(kept, "April 2026: GRR 96.1%, NRR 101.3%")

    assert lines[0] == "April 2026: GRR 96.1%, NRR 101.3%"
    assert (
        "still paying 7/8 treated (87.5%) vs 2/3 holdout (66.7%), lift +20.8 pts [-20.0 pts, +60.0 pts]"
        in lines[1]
    )
    assert lines[2] == "  net MRR retained 95.0% vs 66.7%; 2 entries pending; not enough data yet"
    assert run.retention_lines(kept)[0].startswith(
        "Renewal journey (upcoming-renewal) on simulated revenue, 59 days"
    )
