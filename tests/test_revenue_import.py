"""`engagement import revenue FILE` and the revenue rows account imports and Segment group calls add:
all rows or none, located problems, re-imports that change nothing, and each account's current MRR,
plan and renewal date following its latest row."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_world import NOW, World

from engagement import errors
from engagement.ingest import importer, intake, segment
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")
a, changes = schema.accounts, schema.subject_changes
revenue = schema.table(schema.Revenue)


def write(world: World, name: str, text: str) -> Path:
    path = world.root / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(world: World, kind: str, path: Path, now: datetime = NOW) -> importer.ImportResult:
    return importer.import_file(world.db, world.settings, kind, path, now)


def rows_of(world: World, account: str) -> list[tuple[Any, ...]]:
    found = world.rows(revenue, revenue.c.account_id == account)
    return sorted((r["effective_at"], r["mrr"], r["plan"], r["renewal_date"], r["source"]) for r in found)


def account(world: World, account_id: str) -> dict[str, Any]:
    return dict(world.rows(a, a.c.id == account_id)[0])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def accounts(world: World) -> World:
    """Two accounts, imported with their plan and MRR before any revenue row."""
    world.accounts(
        {"id": "acme", "name": "Acme", "plan": "pro", "mrr": 99, "renewal_date": "2026-06-01"},
        {"id": "globex", "name": "Globex", "plan": "starter", "mrr": 29},
    )
    return world


HISTORY = """
    account_id,effective_at,mrr,plan,renewal_date
    acme,2026-01-01T00:00:00Z,100,pro,2027-01-01
    acme,2026-02-01T00:00:00Z,150,,
    globex,2026-01-15T00:00:00Z,6000,enterprise,
    acme,2025-12-01T00:00:00Z,80,starter,
"""


def test_imported_rows_are_stored_and_each_account_takes_its_latest_rows_mrr_plan_and_renewal_date(
    accounts: World,
) -> None:
    result = load(accounts, "revenue", write(accounts, "revenue.csv", HISTORY))

    assert result.imported == 4
    assert rows_of(accounts, "acme") == [
        (at("2025-12-01T00:00"), 80.0, "starter", None, "import"),
        (at("2026-01-01T00:00"), 100.0, "pro", date(2027, 1, 1), "import"),
        (at("2026-02-01T00:00"), 150.0, None, None, "import"),
    ]
    acme, globex = account(accounts, "acme"), account(accounts, "globex")
    # the latest row gives the MRR; it gives no plan or renewal date, so the account keeps its own
    assert (acme["mrr"], acme["plan"], acme["renewal_date"]) == (150.0, "pro", date(2026, 6, 1))
    assert (globex["mrr"], globex["plan"]) == (6000.0, "enterprise")
    assert globex["touch"] == "high"  # the touch tier follows the new plan and MRR


def test_a_row_older_than_the_latest_changes_no_current_value(accounts: World) -> None:
    load(accounts, "revenue", write(accounts, "first.csv", HISTORY))
    before = account(accounts, "acme")

    late = "account_id,effective_at,mrr,plan,renewal_date\nacme,2025-06-01T00:00:00Z,10,free,2025-07-01\n"
    load(accounts, "revenue", write(accounts, "late.csv", late), NOW + timedelta(hours=1))

    assert len(rows_of(accounts, "acme")) == 4
    assert account(accounts, "acme") == before


def test_an_older_row_does_not_undo_a_plan_the_account_import_changed_at_the_same_mrr(
    accounts: World,
) -> None:
    rows = "account_id,effective_at,mrr,plan,renewal_date\nacme,2026-02-01T00:00:00Z,150,pro,2027-02-01\n"
    load(accounts, "revenue", write(accounts, "latest.csv", rows))
    renamed = "id,plan,renewal_date\nacme,enterprise,2027-03-01\n"
    load(accounts, "accounts", write(accounts, "accounts.csv", renamed), NOW + timedelta(hours=1))

    old = "account_id,effective_at,mrr\nacme,2025-06-01T00:00:00Z,10\n"
    load(accounts, "revenue", write(accounts, "old.csv", old), NOW + timedelta(hours=2))

    acme = account(accounts, "acme")
    assert (acme["mrr"], acme["plan"], acme["renewal_date"]) == (150.0, "enterprise", date(2027, 3, 1))


def test_reimporting_the_same_rows_changes_nothing(accounts: World) -> None:
    path = write(accounts, "revenue.csv", HISTORY)
    load(accounts, "revenue", path)
    stored = accounts.rows(revenue)
    accounts_before = accounts.rows(a)
    logged = accounts.count(changes)

    result = load(accounts, "revenue", path, NOW + timedelta(days=1))

    assert result.imported == 4
    assert accounts.rows(revenue) == stored  # not even recorded_at moved
    assert accounts.rows(a) == accounts_before
    assert accounts.count(changes) == logged  # no account was rewritten, so no journey re-reads one


def test_a_corrected_row_replaces_the_stored_one_at_its_instant(accounts: World) -> None:
    load(accounts, "revenue", write(accounts, "revenue.csv", HISTORY))
    fixed = "account_id,effective_at,mrr\nacme,2026-02-01T00:00:00Z,140\n"
    later = NOW + timedelta(days=1)

    load(accounts, "revenue", write(accounts, "fix.csv", fixed), later)

    assert rows_of(accounts, "acme")[-1] == (at("2026-02-01T00:00"), 140.0, None, None, "import")
    assert account(accounts, "acme")["mrr"] == 140.0


def test_jsonl_rows_with_offsets_are_read_like_csv(accounts: World) -> None:
    path = accounts.root / "revenue.jsonl"
    rows = [
        {"account_id": "acme", "effective_at": "2026-01-01T01:00:00+01:00", "mrr": 120.5, "plan": "pro"},
        {"account_id": "globex", "effective_at": "2026-01-01", "mrr": 0},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    load(accounts, "revenue", path)

    assert rows_of(accounts, "acme") == [(at("2026-01-01T00:00"), 120.5, "pro", None, "import")]
    assert account(accounts, "globex")["mrr"] == 0.0


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("nobody,2026-01-01T00:00:00Z,10", "account_id", "unknown account 'nobody' (import accounts first)"),
        ("acme,2026-01-01T00:00:00Z,-1", "mrr", "greater than or equal to 0"),
        ("acme,2026-01-01T00:00:00Z,nan", "mrr", "finite number"),
        ("acme,2026-01-01T00:00:00Z,inf", "mrr", "finite number"),
        ("acme,2026-01-01T00:00:00Z,", "mrr", "required field is missing"),
        ("acme,yesterday,10", "effective_at", "Invalid isoformat"),
    ],
)
def test_a_bad_row_names_its_line_and_field_and_nothing_is_written(
    accounts: World, line: str, field: str, message: str
) -> None:
    path = write(
        accounts, "revenue.csv", f"account_id,effective_at,mrr\nacme,2026-01-01T00:00:00Z,10\n{line}\n"
    )
    before = accounts.rows(a)

    with pytest.raises(errors.ImportFileError) as caught:
        load(accounts, "revenue", path)

    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (3, field)
    assert message in problem.message
    assert accounts.count(revenue) == 0 and accounts.rows(a) == before


def test_an_account_import_that_changes_mrr_adds_a_row_at_the_import_time_and_one_that_does_not_adds_none(
    accounts: World,
) -> None:
    first = "id,name,plan,mrr\nacme,Acme,pro,99\nglobex,Globex,business,500\ninitech,Initech,pro,70\n"

    load(accounts, "accounts", write(accounts, "accounts.csv", first))

    assert rows_of(accounts, "acme") == []  # same MRR (a new plan alone is no revenue row either)
    assert rows_of(accounts, "globex") == [(NOW, 500.0, "business", None, "account")]
    assert rows_of(accounts, "initech") == [(NOW, 70.0, "pro", None, "account")]  # new: from 0
    assert account(accounts, "globex")["mrr"] == 500.0

    load(
        accounts,
        "accounts",
        write(accounts, "again.csv", "id,name\nglobex,Globex Corp\n"),
        NOW + timedelta(1),
    )
    assert len(rows_of(accounts, "globex")) == 1  # a row without mrr leaves it


def _group(world: World, now: datetime, *calls: dict[str, Any]) -> None:
    batch = segment.Batch.model_validate({"batch": [{"type": "group", **call} for call in calls]})
    with world.db.begin() as conn:
        intake.write(
            world.db, conn, [(["batch", i], c) for i, c in enumerate(batch.batch)], world.settings, now
        )


def test_a_segment_group_call_that_changes_mrr_adds_a_row_at_the_calls_own_time(accounts: World) -> None:
    later = NOW + timedelta(hours=3)
    _group(
        accounts,
        later,
        {"groupId": "acme", "userId": "u1", "timestamp": "2026-03-01T12:00:00Z", "traits": {"mrr": 250}},
        {"groupId": "globex", "userId": "u2", "traits": {"mrr": 29, "plan": "starter"}},  # unchanged
        {"groupId": "hooli", "userId": "u3", "traits": {"mrr": 40, "plan": "pro"}},  # no timestamp: now
    )

    assert rows_of(accounts, "acme") == [(at("2026-03-01T12:00"), 250.0, None, None, "segment")]
    assert rows_of(accounts, "globex") == []
    assert rows_of(accounts, "hooli") == [(later, 40.0, "pro", None, "segment")]
    assert account(accounts, "acme")["mrr"] == 250.0


def test_a_group_call_dated_before_the_latest_row_does_not_change_the_current_mrr(accounts: World) -> None:
    load(accounts, "revenue", write(accounts, "revenue.csv", HISTORY))  # acme's latest: 150 on 2026-02-01

    _group(accounts, NOW, {"groupId": "acme", "timestamp": "2026-01-10T00:00:00Z", "traits": {"mrr": 120}})

    assert (at("2026-01-10T00:00"), 120.0, None, None, "segment") in rows_of(accounts, "acme")
    assert account(accounts, "acme")["mrr"] == 150.0


def test_the_last_line_for_one_account_and_instant_wins(accounts: World) -> None:
    rows = "account_id,effective_at,mrr\nacme,2026-01-01T00:00:00Z,10\nacme,2026-01-01T00:00:00Z,20\n"

    result = load(accounts, "revenue", write(accounts, "revenue.csv", rows))

    assert result.imported == 2
    assert rows_of(accounts, "acme") == [(at("2026-01-01T00:00"), 20.0, None, None, "import")]


def test_skip_invalid_imports_the_rows_of_known_accounts_and_reports_the_others(accounts: World) -> None:
    rows = """
        account_id,effective_at,mrr
        nobody,2026-01-01T00:00:00Z,10
        acme,2026-01-01T00:00:00Z,-5
        acme,2026-01-02T00:00:00Z,30
    """
    path = write(accounts, "revenue.csv", rows)

    result = importer.import_file(accounts.db, accounts.settings, "revenue", path, NOW, skip_invalid=True)

    assert [(p.line, p.field) for p in result.problems] == [(2, "account_id"), (3, "mrr")]
    assert (result.imported, result.skipped) == (1, 2)
    assert rows_of(accounts, "acme") == [(at("2026-01-02T00:00"), 30.0, None, None, "import")]


def test_text_no_door_accepts_is_reported_by_line_and_field(accounts: World) -> None:
    path = accounts.root / "revenue.csv"
    path.write_bytes(
        b"account_id,effective_at,mrr,plan\nacme,2026-01-01T00:00:00Z,10,pro\x00\nacme,2026-01-02,1,\xff\n"
    )

    with pytest.raises(errors.ImportFileError) as caught:
        load(accounts, "revenue", path)

    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "plan"), (3, "plan")]


def test_the_command_imports_revenue_and_names_the_kinds(accounts: World) -> None:
    path = write(accounts, "revenue.csv", HISTORY)

    done = accounts.cli("import", "revenue", str(path))

    assert done.exit_code == 0, done.output
    assert "imported 4 revenue row(s)" in done.output
    assert account(accounts, "acme")["mrr"] == 150.0
    wrong = accounts.cli("import", "payments", str(path))
    assert wrong.exit_code == 1 and "accounts, contacts, events or revenue" in str(wrong.exception)
