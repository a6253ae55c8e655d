"""Importing CSV and JSONL: upserts by id, all rows or none, problems located by line and field."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from backends import Analyses, postgres_url
from engine_world import NOW, World

from engagement import config, errors
from engagement.ingest import importer
from engagement.ingest.importer import ImportResult
from engagement.store import schema

a, c, ev, m, am = (
    schema.accounts,
    schema.contacts,
    schema.events,
    schema.milestones,
    schema.account_milestones,
)
TABLES = (a, c, ev, m, am)
ENGAGEMENT = Path(sys.executable).with_name("engagement")


def write(world: World, name: str, text: str) -> Path:
    path = world.root / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def jsonl(world: World, name: str, *rows: dict[str, Any]) -> Path:
    path = world.root / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def load(world: World, kind: str, path: Path, *, skip_invalid: bool = False) -> ImportResult:
    return importer.import_file(world.db, world.settings, kind, path, NOW, skip_invalid=skip_invalid)


def counts(world: World) -> tuple[int, ...]:
    return tuple(world.count(table) for table in TABLES)


def by_id(world: World, table: Any) -> dict[str, Any]:
    return {row["id"]: row for row in world.rows(table)}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def base(world: World) -> World:
    """Two accounts, two contacts and one event already imported."""
    load(
        world,
        "accounts",
        write(
            world,
            "base-accounts.csv",
            """
        id,name,plan,mrr
        acme,Acme,pro,99
        globex,Globex,starter,29
    """,
        ),
    )
    load(
        world,
        "contacts",
        write(
            world,
            "base-contacts.csv",
            """
        id,account_id,email,first_name,role,timezone
        ada,acme,ada@acme.example,Ada,admin,Europe/London
        bob,globex,bob@globex.example,Bob,member,America/New_York
    """,
        ),
    )
    load(
        world,
        "events",
        jsonl(
            world,
            "base-events.jsonl",
            {"id": "e1", "contact_id": "ada", "name": "first_login", "timestamp": "2026-03-01T09:00:00Z"},
        ),
    )
    return world


# --- upserts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_importing_accounts_twice_updates_by_id_and_keeps_fields_the_second_file_leaves_out(
    world: World, suffix: str
) -> None:
    first = [
        {
            "id": "acme",
            "name": "Acme",
            "plan": "pro",
            "mrr": 99,
            "traits": {"seats": 5},
            "renewal_date": "2026-09-30",
            "signed_up_at": "2025-09-30T12:00:00+02:00",
        },
        {"id": "globex", "name": "Globex", "plan": "starter", "mrr": 29},
    ]
    second = [{"id": "acme", "name": "Acme Corp"}, {"id": "initech", "name": "Initech", "plan": "pro"}]
    if suffix == "csv":
        one = write(
            world,
            "one.csv",
            """
            id,name,plan,mrr,traits,renewal_date,signed_up_at
            acme,Acme,pro,99,"{""seats"": 5}",2026-09-30,2025-09-30T12:00:00+02:00
            globex,Globex,starter,29,,,
        """,
        )
        two = write(
            world,
            "two.csv",
            """
            id,name
            acme,Acme Corp
        """,
        )
        two.write_text(two.read_text() + "initech,Initech\n")
        second[1].pop("plan")
    else:
        one, two = jsonl(world, "one.jsonl", *first), jsonl(world, "two.jsonl", *second)

    assert load(world, "accounts", one).imported == 2
    assert load(world, "accounts", two).imported == 2

    rows = by_id(world, a)
    assert sorted(rows) == ["acme", "globex", "initech"]
    assert (rows["acme"]["name"], rows["acme"]["plan"], rows["acme"]["mrr"]) == ("Acme Corp", "pro", 99.0)
    assert rows["acme"]["traits"] == {"seats": 5}
    assert str(rows["acme"]["renewal_date"]) == "2026-09-30"
    assert rows["acme"]["signed_up_at"] == at("2025-09-30T10:00:00+00:00")
    assert rows["initech"]["traits"] == {}


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_importing_contacts_twice_updates_by_id(base: World, suffix: str) -> None:
    if suffix == "csv":
        path = write(
            base,
            "more.csv",
            """
            id,account_id,email,role,created_at,traits
            ada,acme,ada.l@acme.example,owner,2026-02-01T08:00:00,"{""beta"": true}"
            cy,globex,cy@globex.example,member,2026-02-02T08:00:00-05:00,
        """,
        )
    else:
        path = jsonl(
            base,
            "more.jsonl",
            {
                "id": "ada",
                "account_id": "acme",
                "email": "ada.l@acme.example",
                "role": "owner",
                "created_at": "2026-02-01T08:00:00",
                "traits": {"beta": True},
            },
            {
                "id": "cy",
                "account_id": "globex",
                "email": "cy@globex.example",
                "role": "member",
                "created_at": "2026-02-02T08:00:00-05:00",
            },
        )

    load(base, "contacts", path)

    rows = by_id(base, c)
    assert sorted(rows) == ["ada", "bob", "cy"]
    ada = rows["ada"]
    assert (ada["email"], ada["role"], ada["first_name"], ada["timezone"]) == (
        "ada.l@acme.example",
        "owner",
        "Ada",
        "Europe/London",
    )
    assert ada["traits"] == {"beta": True}
    assert ada["created_at"] == at("2026-02-01T08:00:00+00:00")  # no offset: UTC
    assert rows["cy"]["created_at"] == at("2026-02-02T13:00:00+00:00")


def test_when_a_file_repeats_an_id_its_rows_apply_in_order_and_the_last_one_wins(base: World) -> None:
    path = jsonl(
        base,
        "changes.jsonl",
        {"id": "ada", "account_id": "acme", "email": "one@acme.example", "role": "member"},
        {"id": "ada", "account_id": "acme", "email": "two@acme.example"},
        {"id": "ada", "account_id": "acme", "email": "three@acme.example", "role": "admin"},
        {"id": "bob", "account_id": "globex", "role": "owner"},
        {"id": "bob", "account_id": "globex", "first_name": "Robert"},
    )

    load(base, "contacts", path)

    rows = by_id(base, c)
    assert (rows["ada"]["email"], rows["ada"]["role"]) == ("three@acme.example", "admin")
    assert (rows["bob"]["email"], rows["bob"]["role"], rows["bob"]["first_name"]) == (
        "bob@globex.example",
        "owner",
        "Robert",
    )


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_importing_events_stores_them_and_skips_ids_seen_before(base: World, suffix: str) -> None:
    rows = [
        {"id": "e1", "contact_id": "ada", "name": "first_login", "timestamp": "2026-03-01T09:00:00Z"},
        {
            "id": "e2",
            "contact_id": "ada",
            "name": "report_created",
            "timestamp": "2026-03-01T10:00:00Z",
            "properties": {"report": "mrr"},
        },
        {"id": "e2", "contact_id": "ada", "name": "report_created", "timestamp": "2026-03-01T10:00:00Z"},
        {"contact_id": "bob", "name": "active_day", "timestamp": "2026-03-01T11:00:00Z"},
    ]
    if suffix == "csv":
        path = write(
            base,
            "events.csv",
            """
            id,contact_id,name,timestamp,properties
            e1,ada,first_login,2026-03-01T09:00:00Z,
            e2,ada,report_created,2026-03-01T10:00:00Z,"{""report"": ""mrr""}"
            e2,ada,report_created,2026-03-01T10:00:00Z,
            ,bob,active_day,2026-03-01T11:00:00Z,
        """,
        )
    else:
        path = jsonl(base, "events.jsonl", *rows)

    load(base, "events", path)
    load(base, "events", path)

    stored = base.rows(ev)
    assert sorted((e["event_id"], e["name"]) for e in stored if e["event_id"]) == [
        ("e1", "first_login"),
        ("e2", "report_created"),
    ]
    [report] = [e for e in stored if e["event_id"] == "e2"]
    assert report["properties"] == {"report": "mrr"}
    assert report["account_id"] == "acme"  # filled in from the contact
    assert sum(1 for e in stored if e["event_id"] is None) == 2  # no id: nothing to de-duplicate by


# --- all or nothing -----------------------------------------------------------------------------

BAD_FILES = {
    "bad timestamp": (
        "accounts",
        "a.csv",
        """
        id,name,plan,mrr,signed_up_at
        new1,New One,pro,10,2026-01-01T00:00:00Z
        new2,New Two,pro,10,last tuesday
        new3,New Three,pro,10,
    """,
        3,
        "signed_up_at",
    ),
    "unknown time zone": (
        "contacts",
        "c.csv",
        """
        id,account_id,email,timezone
        cy,acme,cy@acme.example,Europe/Paris
        dee,acme,dee@acme.example,Mars/Olympus
    """,
        3,
        "timezone",
    ),
    "unknown account": (
        "contacts",
        "c.jsonl",
        """
        {"id": "cy", "account_id": "acme", "email": "cy@acme.example"}
        {"id": "dee", "account_id": "nope", "email": "dee@acme.example"}
        {"id": "eve", "account_id": "globex", "email": "eve@globex.example"}
    """,
        2,
        "account_id",
    ),
    "unknown column": (
        "accounts",
        "a2.csv",
        """
        id,name,colour
        new1,New One,red
    """,
        1,
        "colour",
    ),
    "invalid JSON line": (
        "events",
        "e.jsonl",
        """
        {"contact_id": "ada", "name": "report_created", "timestamp": "2026-03-01T10:00:00Z"}
        {"contact_id": "ada", "name": "oops", "timestamp":
        {"contact_id": "bob", "name": "report_created", "timestamp": "2026-03-01T10:00:00Z"}
    """,
        2,
        "",
    ),
    "bad traits JSON after a multi-line cell": (
        "accounts",
        "a3.csv",
        """
        id,name,traits
        new1,New One,"{""note"":
        ""two lines""}"
        new2,New Two,{not json}
    """,
        4,
        "traits",
    ),
    "unknown contact": (
        "events",
        "e2.csv",
        """
        contact_id,name,timestamp
        ada,report_created,2026-03-01T10:00:00Z
        zed,report_created,2026-03-01T10:00:00Z
    """,
        3,
        "contact_id",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_row_is_reported_with_its_line_and_field_and_nothing_is_imported(
    base: World, case: tuple[str, str, str, int, str]
) -> None:
    kind, name, text, line, field = case
    path = write(base, name, text)
    before = counts(base)

    with pytest.raises(errors.ImportFileError) as caught:
        load(base, kind, path)

    located = [str(p) for p in caught.value.problems]
    prefix = f"{path}:{line}: {field}: " if field else f"{path}:{line}: "
    assert len(located) == 1 and located[0].startswith(prefix), located
    assert counts(base) == before


def test_the_summary_counts_invalid_rows_not_problems(base: World) -> None:
    path = write(
        base,
        "two-bad-fields.csv",
        """
        id,account_id,email,timezone
        cy,acme,not-an-address,Nowhere/Land
        dee,acme,dee@acme.example,UTC
    """,
    )

    with pytest.raises(errors.ImportFileError) as caught:
        load(base, "contacts", path)

    assert len(caught.value.problems) == 2
    assert str(caught.value).splitlines()[0].startswith(f"{path}: 1 invalid row(s) (2 problems); nothing")


def test_the_cli_exits_1_and_prints_each_bad_row_when_an_import_fails(base: World) -> None:
    path = write(
        base,
        "bad.csv",
        """
        id,account_id,email,timezone
        cy,acme,cy@acme.example,Nowhere/Land
        dee,acme,not-an-address,UTC
    """,
    )

    done = subprocess.run(
        [str(ENGAGEMENT), "--config", str(base.config_path), "import", "contacts", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert f"{path}:2: timezone: unknown IANA time zone 'Nowhere/Land' (e.g. Europe/Berlin)" in lines
    assert f"{path}:3: email: not an email address: 'not-an-address'" in lines
    assert "nothing was imported" in done.stderr
    assert "Traceback" not in done.stderr
    assert base.count(c) == 2


def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(base: World) -> None:
    path = write(
        base,
        "mixed.csv",
        """
        id,account_id,email,timezone
        cy,acme,cy@acme.example,Europe/Paris
        dee,nope,dee@acme.example,UTC
        eve,globex,eve@globex.example,Mars/Olympus
        fay,globex,fay@globex.example,Asia/Tokyo
    """,
    )

    result = load(base, "contacts", path, skip_invalid=True)

    assert (result.imported, result.skipped) == (2, 2)
    assert sorted(str(p).split(": ")[0:2] for p in result.problems) == [
        [f"{path}:3", "account_id"],
        [f"{path}:4", "timezone"],
    ]
    assert sorted(by_id(base, c)) == ["ada", "bob", "cy", "fay"]


def test_the_cli_skip_invalid_option_reports_the_bad_rows_and_imports_the_rest(base: World) -> None:
    path = write(
        base,
        "mixed.csv",
        """
        id,account_id,email
        cy,acme,cy@acme.example
        dee,nope,dee@acme.example
    """,
    )

    result = base.cli("import", "contacts", str(path), "--skip-invalid")

    assert result.exit_code == 0, result.output
    assert (
        f"skipped {path}:3: account_id: unknown account 'nope' (import accounts first)"
        in result.stderr.splitlines()
    )
    assert "imported 1 contacts (skipped 1 invalid row(s))" in result.stdout
    assert sorted(by_id(base, c)) == ["ada", "bob", "cy"]


# --- milestones ---------------------------------------------------------------------------------


def milestone(world: World, contact_id: str, name: str) -> datetime:
    [row] = world.rows(m, m.c.contact_id == contact_id, m.c.name == name)
    return row["reached_at"]


def account_milestone(world: World, account_id: str, name: str) -> datetime:
    [row] = world.rows(am, am.c.account_id == account_id, am.c.name == name)
    return row["reached_at"]


def test_an_event_makes_a_milestone_that_only_an_earlier_occurrence_moves(base: World) -> None:
    def report(name: str, when: str, contact: str = "ada") -> Path:
        return jsonl(base, name, {"contact_id": contact, "name": "report_created", "timestamp": when})

    load(base, "events", report("first.jsonl", "2026-03-05T10:00:00Z"))
    assert milestone(base, "ada", "report_created") == at("2026-03-05T10:00:00+00:00")
    assert account_milestone(base, "acme", "report_created") == at("2026-03-05T10:00:00+00:00")

    load(base, "events", report("later.jsonl", "2026-03-07T10:00:00Z"))
    assert milestone(base, "ada", "report_created") == at("2026-03-05T10:00:00+00:00")

    load(base, "events", report("earlier.jsonl", "2026-03-03T10:00:00+01:00"))
    assert milestone(base, "ada", "report_created") == at("2026-03-03T09:00:00+00:00")
    assert account_milestone(base, "acme", "report_created") == at("2026-03-03T09:00:00+00:00")
    assert base.count(m, m.c.name == "report_created") == 1


def test_a_skipped_duplicate_event_moves_no_milestone(base: World) -> None:
    replay = jsonl(
        base,
        "replay.jsonl",
        {"id": "e1", "contact_id": "ada", "name": "first_login", "timestamp": "2026-02-01T09:00:00Z"},
        {"id": "e9", "contact_id": "bob", "name": "first_login", "timestamp": "2026-03-02T09:00:00Z"},
        {"id": "e9", "contact_id": "bob", "name": "first_login", "timestamp": "2026-02-02T09:00:00Z"},
    )

    load(base, "events", replay)

    assert base.count(ev) == 2
    assert milestone(base, "ada", "first_login") == at("2026-03-01T09:00:00+00:00")
    assert milestone(base, "bob", "first_login") == at("2026-03-02T09:00:00+00:00")
    assert account_milestone(base, "acme", "first_login") == at("2026-03-01T09:00:00+00:00")


def test_an_account_milestone_is_the_first_occurrence_among_all_its_contacts(base: World) -> None:
    load(base, "contacts", jsonl(base, "c.jsonl", {"id": "cy", "account_id": "acme"}))
    load(
        base,
        "events",
        jsonl(
            base,
            "e.jsonl",
            {"contact_id": "ada", "name": "shared", "timestamp": "2026-03-05T10:00:00Z"},
            {"contact_id": "cy", "name": "shared", "timestamp": "2026-03-04T10:00:00Z"},
        ),
    )

    assert milestone(base, "ada", "shared") == at("2026-03-05T10:00:00+00:00")
    assert milestone(base, "cy", "shared") == at("2026-03-04T10:00:00+00:00")
    assert account_milestone(base, "acme", "shared") == at("2026-03-04T10:00:00+00:00")


# --- touch tier ---------------------------------------------------------------------------------


def touches(world: World) -> dict[str, str]:
    return {row["id"]: row["touch"] for row in world.rows(a)}


def test_the_touch_tier_follows_the_config_rules_unless_the_row_sets_it(world: World) -> None:
    load(
        world,
        "accounts",
        write(
            world,
            "a.csv",
            """
        id,plan,mrr,touch
        small,pro,99,
        mid,business,2000,
        big,pro,6000,
        ent,enterprise,10,
        chosen,pro,99,low
    """,
        ),
    )

    assert touches(world) == {"small": "tech", "mid": "low", "big": "high", "ent": "high", "chosen": "low"}


def test_the_touch_tier_is_recomputed_when_mrr_or_plan_changes_but_an_explicit_tier_stays(
    world: World,
) -> None:
    load(
        world,
        "accounts",
        write(
            world,
            "a.csv",
            """
        id,plan,mrr,touch
        grows,pro,99,
        upgrades,pro,99,
        shrinks,pro,6000,
        chosen,pro,99,low
    """,
        ),
    )

    load(
        world,
        "accounts",
        jsonl(
            world,
            "b.jsonl",
            {"id": "grows", "mrr": 1500},
            {"id": "upgrades", "plan": "enterprise"},
            {"id": "shrinks", "mrr": 50},
            {"id": "chosen", "mrr": 9000},
        ),
    )

    assert touches(world) == {"grows": "low", "upgrades": "high", "shrinks": "tech", "chosen": "low"}


def test_touch_rules_come_from_the_config(world: World) -> None:
    world.settings = config.load(
        world.config_path,
        touch={
            "default": "low",
            "rules": [{"touch": "tech", "plans": ["free"]}, {"touch": "high", "min_mrr": 100}],
        },
    )
    load(
        world,
        "accounts",
        write(
            world,
            "a.csv",
            """
        id,plan,mrr
        free,free,500
        paying,pro,150
        cheap,pro,20
    """,
        ),
    )

    assert touches(world) == {"free": "tech", "paying": "high", "cheap": "low"}


def test_a_big_import_refreshes_the_planner_statistics_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So the first tick after importing a customer base does not plan against an empty contact table."""
    world = World(tmp_path, postgres_url())
    monkeypatch.setattr(importer, "STATISTICS_AFTER", 3)
    try:
        load(world, "accounts", jsonl(world, "a.jsonl", {"id": "acme", "name": "Acme"}))
        seen = []
        for count in (2, 3):
            analyses = Analyses(world.db.engine, "contact")
            people = [
                {"id": f"c{count}{i}", "account_id": "acme", "email": f"c{count}{i}@x.com"}
                for i in range(count)
            ]
            load(world, "contacts", jsonl(world, f"c{count}.jsonl", *people))
            seen.append(analyses.happened(count >= 3))
        assert seen == [False, True]
    finally:
        world.db.dispose()
