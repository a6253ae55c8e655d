"""Small worlds for the health scorecard tests: scorecard files written to a folder, rows by hand or drawn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from backends import url_for
from condition_world import WORLD_TABLES, drop_database, open_database
from sqlalchemy import Connection

from engagement import config
from engagement.health import cards as scorecards
from engagement.store import schema
from engagement.store.database import Database

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SETTINGS = config.Settings()
TABLES = (schema.health_measures, schema.health_scores, schema.table(schema.Revenue), *WORLD_TABLES)

Row = dict[str, Any]


@contextmanager
def fresh_database(backend: str) -> Iterator[Database]:
    """An empty database with every table, dropped again afterwards."""
    handle = open_database(url_for(backend))
    try:
        yield handle
    finally:
        drop_database(handle)


def write_cards(folder: Path, *cards: Row) -> scorecards.Cards:
    """Write each scorecard as a YAML file (JSON is YAML) and load them as the engine does."""
    folder.mkdir(parents=True, exist_ok=True)
    for card in cards:
        (folder / f"{card['id']}.yaml").write_text(json.dumps(card), encoding="utf-8")
    found = scorecards.load(SETTINGS, [folder])
    found.raise_problems()
    return found


def clear(conn: Connection) -> None:
    """Empty every table a scorecard reads or writes, children first."""
    for table in TABLES:
        conn.execute(table.delete())


def revenue(account_id: str, at: datetime, mrr: float, renewal_date: date | None = None) -> Row:
    """A revenue row."""
    return {
        "account_id": account_id, "effective_at": at, "mrr": mrr, "renewal_date": renewal_date,
        "source": "import", "recorded_at": at,
    }  # fmt: skip


def answer(delivery: str, contact_id: str, account_id: str, kind: str, score: int, at: datetime) -> Row:
    """A survey answer row."""
    return {
        "delivery_id": delivery, "contact_id": contact_id, "account_id": account_id, "journey_id": "j",
        "step_id": "s", "kind": kind, "score": score, "answered_at": at,
    }  # fmt: skip
