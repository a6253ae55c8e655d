"""Contacts have their own health bands (`scoring.contact_bands`): a person's score is not an account's."""

from __future__ import annotations

from engine_world import NOW, World
from sqlalchemy import insert, select

from engagement import config
from engagement.conditions.context import day_number
from engagement.scores import score_view, scoring
from engagement.store import schema

BACKENDS = ("sqlite", "postgresql")
# scores as of NOW (no decay): contacts against the default contact bands (green >= 20, yellow >= 8),
# accounts against the account bands (green >= 60, yellow >= 30)
CONTACT_SCORES = {"keen000": 25.0, "some000": 10.0, "idle000": 3.0}
ACCOUNT_SCORES = {"acme": 25.0, "bigco": 70.0}


def _scores(world: World) -> None:
    world.people(1, account="acme", prefix="keen", role="admin")
    world.people(1, account="acme", prefix="some", role="admin")
    world.people(1, account="bigco", prefix="idle", role="admin")
    today = day_number(NOW)
    with world.db.begin() as conn:
        conn.execute(
            insert(schema.contact_scores),
            [{"contact_id": c, "value": v, "as_of_day": today} for c, v in CONTACT_SCORES.items()],
        )
        conn.execute(
            insert(schema.account_scores),
            [{"account_id": a, "value": v, "as_of_day": today} for a, v in ACCOUNT_SCORES.items()],
        )


def test_the_default_contact_bands_are_their_own_and_the_account_bands_stay() -> None:
    scoring_ = config.Settings().scoring
    assert (scoring_.contact_bands.green, scoring_.contact_bands.yellow) == (20.0, 8.0)
    assert (scoring_.bands.green, scoring_.bands.yellow) == (60.0, 30.0)


def test_contacts_and_accounts_are_banded_each_by_their_own_bands(world: World) -> None:
    _scores(world)
    with world.db.begin() as conn:
        contacts = score_view.bands(conn, world.settings, "contact", NOW)
        accounts = score_view.bands(conn, world.settings, "account", NOW)
        people = {s.subject_id: s.band for s in score_view.standings(conn, world.settings, "contact", NOW)}

    assert people == {"keen000": "green", "some000": "yellow", "idle000": "red"}
    assert dict(contacts) == {"green": 1, "yellow": 1, "red": 1}
    assert dict(accounts) == {"green": 1, "red": 1}  # acme's 25 is red for an account


def test_the_daily_snapshot_records_each_subject_in_its_own_bands(world: World) -> None:
    _scores(world)
    scoring.snapshot(world.db, world.settings, NOW)
    s = schema.score_snapshots
    with world.db.begin() as conn:
        rows = {(r.subject_type, r.subject_id): r.band for r in conn.execute(select(s))}
    assert rows == {
        ("contact", "keen000"): "green",
        ("contact", "some000"): "yellow",
        ("contact", "idle000"): "red",
        ("account", "acme"): "red",
        ("account", "bigco"): "green",
    }


def test_contact_bands_in_config_move_the_contacts_only(world: World) -> None:
    world.configure("[scoring.contact_bands]\ngreen = 9\nyellow = 5\n")
    _scores(world)
    with world.db.begin() as conn:
        people = {s.subject_id: s.band for s in score_view.standings(conn, world.settings, "contact", NOW)}
        accounts = {s.subject_id: s.band for s in score_view.standings(conn, world.settings, "account", NOW)}
    assert people == {"keen000": "green", "some000": "green", "idle000": "red"}
    assert accounts == {"acme": "red", "bigco": "green"}


def test_a_contact_journeys_health_trigger_reads_the_contact_bands(world: World) -> None:
    world.journey("""
        id: healthy
        name: Healthy
        status: active
        trigger: {condition: {health: yellow}}
        steps:
          - id: hello
            email: {template: onboarding/welcome, subject: "Hello"}
    """)
    _scores(world)
    world.tick(NOW)
    assert [r["subject_id"] for r in world.rows(schema.enrollments)] == ["some000"]


def test_an_account_journeys_recipients_are_picked_by_the_contact_bands(world: World) -> None:
    world.journey("""
        id: red-accounts
        name: Red accounts
        status: active
        audience: account
        recipients: {health: green}
        trigger: {condition: {health: red}}
        steps:
          - id: recap
            email: {template: renewal/value-recap, subject: "{{ account.name }}: your year"}
    """)
    _scores(world)
    world.tick(NOW)
    assert [r["subject_id"] for r in world.rows(schema.enrollments)] == ["acme"]  # red as an account
    assert [m.to.split("@")[0] for m in world.email.sent] == ["keen000"]  # green as a contact
