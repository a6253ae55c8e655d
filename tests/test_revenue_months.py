"""revenue_month, the states the retention report sums: written with every revenue write (imports, account
changes), equal after each to the states derived afresh from all revenue rows, and right by hand."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

from engine_world import NOW, World

from engagement.ingest import importer
from engagement.store import revenue_months, schema

BACKENDS = ("sqlite", "postgresql")
STATES = revenue_months.REVENUE_MONTH


def load(world: World, kind: str, text: str, hours: int) -> None:
    path = world.root / f"{kind}-{hours}.csv"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    importer.import_file(world.db, world.settings, kind, path, NOW + timedelta(hours=hours))


def _state(row: Any) -> tuple[Any, ...]:
    return tuple(bool(row[c]) if c == "paid_before" else row[c] for c in revenue_months.COLUMNS)


def kept(world: World) -> list[tuple[Any, ...]]:
    return sorted(_state(r) for r in world.rows(STATES))


def derived(world: World) -> list[tuple[Any, ...]]:
    """The states of every account computed now from all revenue rows, as the migration fills them."""
    with world.db.begin() as conn:
        return sorted(_state(r._mapping) for r in conn.execute(revenue_months.states(conn.dialect.name)))


def test_every_revenue_write_leaves_the_states_a_fresh_derivation_gives(world: World) -> None:
    world.accounts({"id": "acme", "name": "Acme", "plan": "pro"}, {"id": "globex", "name": "Globex"})
    load(
        world,
        "revenue",
        """
        account_id,effective_at,mrr,plan,renewal_date
        acme,2026-01-01T00:00:00Z,100,pro,2027-01-01
        acme,2026-01-20T00:00:00Z,120,pro,2027-01-01
        acme,2026-02-01T00:00:00Z,150,,
        globex,2026-01-15T00:00:00Z,60,starter,
        """,
        1,
    )
    assert kept(world) == derived(world)
    load(world, "revenue", "account_id,effective_at,mrr\nacme,2025-06-01T00:00:00Z,10\n", 2)  # older
    assert kept(world) == derived(world)
    load(world, "revenue", "account_id,effective_at,mrr\nacme,2026-02-01T00:00:00Z,0\n", 3)  # corrected
    assert kept(world) == derived(world)
    load(world, "accounts", "id,mrr\nglobex,75\n", 4)  # an account change writes a row too
    assert kept(world) == derived(world)
    assert len({r[1] for r in kept(world)}) == 2  # both accounts have states


def test_a_state_is_the_last_row_up_to_its_boundary_beside_its_neighbours(world: World) -> None:
    world.accounts({"id": "acme", "name": "Acme"})
    load(
        world,
        "revenue",
        """
        account_id,effective_at,mrr,plan,renewal_date
        acme,2025-12-10T00:00:00Z,50,starter,
        acme,2026-01-01T00:00:00Z,0,,
        acme,2026-01-05T00:00:00Z,80,pro,2027-01-05
        acme,2026-01-25T00:00:00Z,90,pro,2027-01-05
        """,
        1,
    )
    s = STATES.c
    found = world.rows(STATES, s.account_id == "acme")
    jan, feb = 2026 * 12, 2026 * 12 + 1  # month numbers: year * 12 + month - 1
    got = sorted(
        (r["boundary"], r["mrr"], r["plan"], r["renewal_month"], r["prev_mrr"], bool(r["paid_before"]))
        + (r["next_boundary"], r["next_mrr"])
        for r in found
    )
    # 2025-12-10 belongs to 2026-01's first instant, as does the row at that very instant (the later one
    # wins: 0); the two January rows to February's, the later kept
    assert got == [
        (jan, 0.0, None, None, 0.0, False, feb, 90.0),
        (feb, 90.0, "pro", 2027 * 12, 0.0, True, None, None),
    ]
    assert schema.RevenueMonth.__tablename__ == "revenue_month"
