"""`engagement serve --workers N`: several server processes taking the same signed SendGrid batches and
Segment batches at once, each batch twice, leave exactly the state one process leaves after taking each
batch once; a worker count out of range is refused, naming it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from backends import url_for
from sqlalchemy import Table, select
from typer.testing import CliRunner

from engagement import config, errors
from engagement.cli import app
from engagement.store import schema
from engagement.store.database import Database
from engagement.testing.api_process import ApiProcess, empty, post_all
from engagement.testing.ingest_load import (
    SEGMENT_HEADERS,
    WRITE_KEY,
    add_deliveries,
    segment_batches,
    segment_database,
    sendgrid_events,
    signed_batches,
    track_calls,
)

DELIVERIES, CONTACTS, CALLS = 200, 100, 800
# columns whose values come from the clock or a sequence, not from the events
VOLATILE = {"pk", "created_at", "updated_at", "received_at", "ran_at", "pending_at", "pending_xid"}
TABLES = (
    schema.responses,
    schema.deliveries,
    schema.suppressions,
    schema.contacts,
    schema.events,
    schema.milestones,
    schema.account_milestones,
    schema.score_credits,
)


def state(url: str) -> dict[str, Any]:
    """Every table the intake writes, without clock- or sequence-given columns; scores decayed to one day."""
    db = Database(url)
    found: dict[str, Any] = {}
    half_life = config.Settings().scoring.half_life_days
    with db.begin() as conn:
        for table in TABLES:
            found[table.name] = _rows(conn, table)
        # an active day is credited at the first of its events the scorer's pass saw: the day is fixed,
        # the time of day depends on which requests that pass followed
        found["score_credit"] = [(*row[:-1], row[-1].split(".")[0]) for row in found["score_credit"]]
        for table in (schema.contact_scores, schema.account_scores):
            found[table.name] = sorted(
                (row[0], round(row.value * 0.5 ** ((30_000 - row.as_of_day) / half_life), 9))
                for row in conn.execute(select(table))
            )
    db.dispose()
    return found


def _rows(conn: Any, table: Table) -> list[tuple[Any, ...]]:
    columns = [c for c in table.columns if c.name not in VOLATILE]
    return sorted(tuple(map(repr, row)) for row in conn.execute(select(*columns)))


def load(folder: Path, url: str, workers: int, *, twice: bool) -> dict[str, Any]:
    """Serve with `workers` processes and post every SendGrid and Segment batch (each twice if `twice`)."""
    db = segment_database(url, CONTACTS)
    add_deliveries(db, DELIVERIES)
    db.dispose()
    public, signed = signed_batches(sendgrid_events(DELIVERIES, seed=3), 100)
    tracked = [(body, SEGMENT_HEADERS) for body in segment_batches(track_calls(CALLS, 4, CONTACTS), 100)]
    path = folder / f"config-{workers}.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n[server]\nworkers = {workers}\n'
        f'[api]\nwrite_keys = ["{WRITE_KEY}"]\n[webhooks.sendgrid]\npublic_key = "{public}"\n'
    )
    concurrency = 4 if twice else 1
    if twice:
        signed, tracked = signed * 2, tracked * 2
        random.Random(workers).shuffle(signed)
        random.Random(workers).shuffle(tracked)
    with ApiProcess(path) as api:
        answers = post_all(f"{api.url}/webhooks/sendgrid", signed, concurrency)
        post_all(f"{api.url}/v1/batch", tracked, concurrency)
        api.idle_cpu_seconds()  # the background scorers have credited everything
    assert sum(a["recorded"] for a in answers) == DELIVERIES * 4
    return state(url)


@pytest.mark.slow
def test_several_processes_leave_the_state_one_process_leaves(backend: str, tmp_path: Path) -> None:
    url = url_for(backend, tmp_path)
    one = load(tmp_path, url, 1, twice=False)
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'several.db'}"
    several = load(tmp_path, url, 2, twice=True)
    if backend != "sqlite":
        empty(Database(url))
    assert one["response"] and one["event"] and one["score_credit"] and one["suppression"]
    assert {name: len(rows) for name, rows in several.items()} == {
        name: len(rows) for name, rows in one.items()
    }
    assert several == one


def test_a_worker_count_out_of_range_is_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    answer = runner.invoke(app, ["serve", "--workers", "0"])
    assert answer.exit_code == 2
    assert "Invalid value for '--workers'" in answer.output
    assert "greater than or equal to 1" in answer.output
    path = tmp_path / "config.toml"
    path.write_text("[server]\nworkers = 65\n")
    answer = runner.invoke(app, ["--config", str(path), "serve"])
    assert answer.exit_code == 1
    assert isinstance(answer.exception, errors.ConfigError)
    assert "server.workers: Input should be less than or equal to 64" in str(answer.exception)
    assert "ENGAGEMENT_SERVER__WORKERS" in str(answer.exception)
