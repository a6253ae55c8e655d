"""Six accounts' revenue over 2025 and 2026, written straight into `account` and `revenue`, with every figure
of the retention report for 2026-01 to 2026-04 worked out by hand in tests/test_retention.py.

- A (tech, team): 100 throughout; renewal 2026-02-15 known since 2025, renewed by a row on that day.
- B (low, starter): 50 from 2025-03-01 00:00 (new business in February 2025), churns 2026-01-20 and
  comes back at 60 on team 2026-03-10 (reactivation).
- C (tech, business): 200, then twice in February: 300 on the 3rd, 150 on team on the 20th (only the
  month's net counts: a contraction of 50, no expansion).
- D (high, team): new at 80 on 2026-01-15; 120 from 2026-03-01 00:00, which is February's end (b).
- E (tech, starter): 40 with renewal 2026-03-20, churns that day (a renewal due and lost).
- F (low, starter): paid 30 in 2025 and churned before the range; back at 30 on 2026-04-10 (reactivation).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert

from engagement.store import revenue_months, schema
from engagement.store.database import Database

REVENUE = schema.table(schema.Revenue)
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    """An ISO instant (UTC when no offset is given)."""
    found = datetime.fromisoformat(text)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def revenue(db: Database, *rows: tuple[str, str, float, str | None, str | None]) -> None:
    """Revenue rows (account, effective_at, mrr, plan, renewal_date), inserted as they are; like every writer
    of revenue, it then rewrites those accounts' revenue_month states."""
    with db.begin() as conn:
        conn.execute(
            insert(REVENUE),
            [
                {
                    "account_id": account,
                    "effective_at": at(effective),
                    "mrr": mrr,
                    "plan": plan,
                    "renewal_date": date.fromisoformat(renewal) if renewal else None,
                    "source": "import",
                }
                for account, effective, mrr, plan, renewal in rows
            ],
        )
        revenue_months.refresh(conn, [account for account, *_ in rows])


def accounts(db: Database, *rows: tuple[str, str, str, str]) -> None:
    """Accounts (id, touch, plan, signed_up_at)."""
    values: list[dict[str, Any]] = [
        {"id": i, "name": i, "touch": touch, "plan": plan, "signed_up_at": at(signup), "traits": {}}
        for i, touch, plan, signup in rows
    ]
    with db.begin() as conn:
        conn.execute(insert(schema.accounts), values)


def seed(db: Database) -> None:
    """The six accounts above."""
    accounts(
        db,
        ("A", "tech", "team", "2025-06-10"),
        ("B", "low", "team", "2025-03-01"),
        ("C", "tech", "team", "2025-11-05"),
        ("D", "high", "team", "2026-01-15"),
        ("E", "tech", "starter", "2025-04-01"),
        ("F", "low", "starter", "2025-05-05"),
    )
    revenue(
        db,
        ("A", "2025-06-10T09:00:00", 100, "team", "2026-02-15"),
        ("A", "2026-02-15T00:00:00", 100, "team", "2027-02-15"),
        ("B", "2025-03-01T00:00:00", 50, "starter", "2026-03-01"),
        ("B", "2026-01-20T16:30:00", 0, None, None),
        ("B", "2026-03-10T08:00:00", 60, "team", None),
        ("C", "2025-11-05T12:00:00", 200, "business", None),
        ("C", "2026-02-03T12:00:00", 300, "business", None),
        ("C", "2026-02-20T12:00:00", 150, "team", None),
        ("D", "2026-01-15T10:00:00", 80, "team", None),
        ("D", "2026-03-01T00:00:00", 120, "team", None),
        ("E", "2025-04-01T00:00:00", 40, "starter", "2026-03-20"),
        ("E", "2026-03-20T00:00:00", 0, "starter", None),
        ("F", "2025-05-05T00:00:00", 30, "starter", None),
        ("F", "2025-08-10T00:00:00", 0, "starter", None),
        ("F", "2026-04-10T00:00:00", 30, "starter", None),
    )
