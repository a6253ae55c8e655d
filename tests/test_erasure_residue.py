"""After an erasure, and after a late signed SendGrid bounce and click naming the address, no byte of the
address or the name remains: on SQLite in the database file and its write-ahead log, on both backends in
any row of any table, and in the file outbox.

What is covered on PostgreSQL: every row of every table in the database's schema, each row read whole as
text (`t::text`), so every column of every type. What is not: dead row versions on disk that VACUUM has
not reused yet, PostgreSQL's own WAL and archives, and backups; the erasure does not reach those.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from engine_world import NOW, World, one_email
from sqlalchemy import insert, text, update
from test_webhook_sendgrid import KEY, encode, public_text, signed

from engagement.api.app import create_app
from engagement.clock import ManualClock
from engagement.delivery.outbox import OutboxEmail
from engagement.store import database, erasure, schema
from engagement.store.database import Database
from engagement.testing.served import served

BACKENDS = ("sqlite", "postgresql")
ADDRESS = "zenobia.quill@example.org"
PERSONAL = (ADDRESS, "Zenobia", "Quixotefield")


def _world(world: World) -> World:
    world.configure(f'[webhooks.sendgrid]\npublic_key = "{public_text(KEY)}"\n')
    world.journey(one_email(step_id="mail"))
    world.accounts({"id": "acme", "name": "Acme", "plan": "pro", "mrr": 99})
    world.contacts(
        {"id": "z1", "account_id": "acme", "email": ADDRESS, "first_name": "Zenobia", "last_name": "Quixotefield",
         "traits": {"nickname": "Zenobia Quixotefield"}}
    )  # fmt: skip
    world.events({"contact_id": "z1", "name": "signed_up", "timestamp": NOW, "properties": {"by": ADDRESS}})
    world.engine_with(OutboxEmail(world.settings.path("outbox"))).tick(NOW)
    return world


def _rows_text(world: World) -> str:
    """Every row of every table of the database, each read whole as text."""
    parts: list[str] = []
    with world.db.begin() as conn:
        if world.db.dialect == "sqlite":
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars().all()
            for name in names:
                parts += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{name}"'))]
        else:
            names = (
                conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
                .scalars()
                .all()
            )
            for name in names:
                parts += conn.execute(text(f'SELECT t::text FROM "{name}" AS t')).scalars().all()
    return "\n".join(parts)


def _files(world: World) -> dict[str, bytes]:
    """The SQLite database file and its write-ahead log (when there is one), and every outbox file."""
    found: dict[str, bytes] = {}
    if world.db.dialect == "sqlite":
        main = Path(world.db.url.removeprefix("sqlite:///"))
        for path in (main, main.with_name(main.name + "-wal")):
            if path.exists():
                found[path.name] = path.read_bytes()
    for path in world.settings.path("outbox").rglob("*"):
        if path.is_file():
            found[str(path)] = path.read_bytes()
    return found


def _leaks(world: World) -> list[tuple[str, str]]:
    where = {"rows": _rows_text(world).lower().encode()} | {k: v.lower() for k, v in _files(world).items()}
    return [
        (name, value) for name, data in where.items() for value in PERSONAL if value.lower().encode() in data
    ]


def test_no_byte_of_an_erased_contact_remains_after_erasure_and_after_a_late_bounce_and_click(
    world: World,
) -> None:
    w = _world(world)
    [sent] = w.rows(schema.deliveries)
    found = _leaks(w)
    assert ("rows", ADDRESS) in found and any(name.endswith(".eml") for name, _ in found)
    if w.db.dialect == "sqlite":
        assert any(name.endswith("-wal") for name, _ in found)  # where the data sits before a checkpoint

    done = erasure.erase(w.db, "z1", NOW + timedelta(hours=1), outbox=w.settings.path("outbox"))

    assert done.log_truncated and done.outbox_files == 1
    assert _leaks(w) == []

    at = int((NOW + timedelta(hours=2)).timestamp())
    late = encode(
        [
            {"email": ADDRESS, "event": "bounce", "type": "bounce", "timestamp": at, "sg_event_id": "late-bounce",
             "reason": f"550 5.1.1 <{ADDRESS}>: Recipient address rejected (Zenobia Quixotefield)",
             "status": "5.1.1", "delivery_id": sent["id"]},
            {"email": ADDRESS, "event": "click", "timestamp": at, "sg_event_id": "late-click",
             "url": f"https://app.chartwell.example/?who={ADDRESS}", "delivery_id": sent["id"]},
        ]
    )  # fmt: skip
    app = create_app(w.settings, database=w.db, clock=ManualClock(NOW + timedelta(hours=2)))
    with served(app) as url:
        answer = httpx.post(f"{url}/webhooks/sendgrid", content=late, headers=signed(late, timestamp=str(at)))

    assert answer.status_code == 200 and answer.json()["recorded"] == 2, answer.text
    [delivery] = w.rows(schema.deliveries)
    assert (delivery["status"], delivery["status_reason"]) == ("bounced", "bounce")
    assert sorted(r["kind"] for r in w.rows(schema.responses)) == ["bounce", "click"]
    assert _leaks(w) == []
    [kept] = w.rows(schema.suppressions)
    assert kept["email"] is None and kept["reason"] == "manual"  # the hash keeps the opt-out


@pytest.mark.parametrize("staged_before", [False, True], ids=["fresh", "after-a-staged-import"])
def test_sqlite_keeps_a_statements_undo_pages_in_memory_never_in_a_temporary_file(
    tmp_path: Path, staged_before: bool
) -> None:
    """A statement's journal holds the old content of every page it changes, so that it alone can be undone:
    erased rows among them. SQLite moves it to a file (its temporary files are named etilqs_…, unlinked but
    open until the transaction ends) once it passes 64 KiB, unless temporary storage is in memory. An
    import's staging table goes to a file (a whole file's rows); its connection is back in memory after."""
    db = Database(f"sqlite:///{tmp_path / 'journal.db'}")
    db.create_all()
    with db.begin() as conn:
        conn.execute(
            insert(schema.accounts),
            [{"id": f"a{i:05}", "name": "Zenobia Quixotefield " * 8, "plan": "pro", "mrr": 1.0, "traits": {}}
             for i in range(2000)],
        )  # fmt: skip
    if staged_before:
        with db.begin() as conn:
            database.temporary_tables_on_disk(conn)
            conn.execute(text("CREATE TEMPORARY TABLE staged (line INTEGER)"))
            conn.execute(text("DROP TABLE staged"))
    with db.begin() as conn:  # rewrites every page of the table: far past 64 KiB of journal
        conn.execute(update(schema.accounts).values(name="erased"))
        conn.execute(update(schema.accounts).values(plan="basic"))
        held = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                held.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # closed meanwhile (the listing's own descriptor)
                continue
    db.dispose()
    assert [path for path in held if "etilqs_" in path] == []
