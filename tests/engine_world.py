"""A small world for engine tests: a config folder, a SQLite file, journeys and recording providers."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select, text, update
from typer.testing import CliRunner, Result

from engagement import config
from engagement.clock import Clock, ManualClock
from engagement.delivery import suppression
from engagement.delivery.message import EmailProvider
from engagement.delivery.recording import RecordingEmail, RecordingWebhook
from engagement.engine import Engine, load_catalog
from engagement.ingest import upserts as ingest
from engagement.ingest.records import AccountIn, ContactIn, EventIn
from engagement.store import schema
from engagement.store.database import Database

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates" / "email"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning


def one_email(journey_id: str = "welcome", step_id: str = "hello") -> str:
    """A journey that sends the welcome email once, to each contact who signs up."""
    return (
        f"id: {journey_id}\nname: {journey_id.title()}\nstatus: active\ntrigger: {{event: signed_up}}\nsteps:\n"
        f"  - id: {step_id}\n"
        '    email: {template: onboarding/welcome, subject: "Welcome aboard, {{ contact.first_name }}"}\n'
    )


CONFIG = """\
[database]
url = "sqlite:///engagement.db"
[journeys]
dir = "journeys"
[templates]
dir = "{templates}"
[email]
provider = "outbox"
from = "Chartwell <success@chartwell.example>"
reply_to = "Chartwell Customer Success <help@chartwell.example>"
[email.outbox]
dir = "outbox"
[company]
name = "Chartwell Analytics, Inc."
postal_address = "500 Example Street, Suite 100, Springfield, OR 97477, USA"
[webhooks.csm-alerts]
url = "https://hooks.example.com/services/csm-alerts"
"""


def empty(db: Database) -> None:
    """Delete every row of every table (a PostgreSQL database outlives the test that used it)."""
    names = ", ".join(t.name for t in schema.metadata.sorted_tables)
    with db.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


class World:
    """One working folder: config.toml, journeys/, engagement.db, and what the engine sent."""

    def __init__(self, root: Path, url: str | None = None) -> None:
        """`url`: a PostgreSQL database to use (emptied first) instead of a fresh SQLite file."""
        self.root = root
        self.journeys = root / "journeys"
        self.journeys.mkdir()
        self.config_path = root / "config.toml"
        text = CONFIG.format(templates=TEMPLATES)
        if url:
            text = text.replace('url = "sqlite:///engagement.db"', f'url = "{url}"')
        self.config_path.write_text(text)
        self.settings = config.load(self.config_path)
        self.db = Database(self.settings.database_url)
        self.db.create_all()
        if url:
            empty(self.db)
        self.email = RecordingEmail()
        self.webhooks = RecordingWebhook()
        self._engine: Engine | None = None

    def journey(self, text: str) -> Path:
        """Write a YAML journey (named after its id) and reload the catalog on the next tick."""
        body = textwrap.dedent(text)
        path = self.journeys / f"{yaml.safe_load(body)['id']}.yaml"
        path.write_text(body)
        self._engine = None
        return path

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(
                self.settings,
                clock=ManualClock(NOW),
                database=self.db,
                catalog=load_catalog(self.settings),
                email=self.email,
                webhooks=self.webhooks,
            )
        return self._engine

    def tick(self, at: datetime) -> Any:
        return self.engine.tick(at)

    def accounts(self, *rows: dict[str, Any]) -> None:
        with self.db.begin() as conn:
            ingest.upsert_accounts(
                self.db, conn, [AccountIn.model_validate(r) for r in rows], self.settings.touch, NOW
            )

    def contacts(self, *rows: dict[str, Any]) -> None:
        with self.db.begin() as conn:
            ingest.upsert_contacts(self.db, conn, [ContactIn.model_validate(r) for r in rows], NOW)

    def events(self, *rows: dict[str, Any]) -> None:
        with self.db.begin() as conn:
            ingest.insert_events(self.db, conn, [EventIn.model_validate(r) for r in rows], NOW)

    def people(self, count: int, *, account: str = "acme", prefix: str = "c", **fields: Any) -> list[str]:
        """An account (if new) and `count` contacts in it; returns their ids."""
        self.accounts({"id": account, "name": account.title(), "plan": "pro", "mrr": 99})
        ids = [f"{prefix}{i:03d}" for i in range(count)]
        self.contacts(
            *(
                {
                    "id": cid,
                    "account_id": account,
                    "email": f"{cid}@example.com",
                    "first_name": cid.upper(),
                    **fields,
                }
                for cid in ids
            )
        )
        return ids

    def suppress(self, email: str) -> None:
        with self.db.begin() as conn:
            suppression.add(self.db, conn, email, "unsubscribe", "test", NOW)

    def rows(self, table: Any, *where: Any) -> list[Any]:
        with self.db.begin() as conn:
            return list(conn.execute(select(table).where(*where)).mappings())

    def count(self, table: Any, *where: Any) -> int:
        with self.db.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

    def cli(self, *args: str) -> Result:
        """Run `engagement --config <this world> ARGS` in process."""
        from engagement.cli import app

        return CliRunner().invoke(app, ["--config", str(self.config_path), *args])

    # --- additions for the delivery tests ---------------------------------------------------------

    def configure(self, toml: str) -> None:
        """Append TOML tables to config.toml and reload the settings (the next tick uses them)."""
        with self.config_path.open("a") as out:
            out.write("\n" + textwrap.dedent(toml))
        self.settings = config.load(self.config_path)
        self._engine = None

    def engine_with(self, email: EmailProvider, clock: Clock | None = None) -> Engine:
        """A separate engine over this world's database and journeys that sends email through `email`."""
        return Engine(
            self.settings,
            clock=clock or ManualClock(NOW),
            database=self.db,
            catalog=load_catalog(self.settings),
            email=email,
            webhooks=self.webhooks,
        )

    def erase(self, contact_id: str, at: datetime = NOW) -> None:
        """Erase a contact as a privacy request would: personal fields gone, `erased_at` set."""
        c = schema.contacts
        with self.db.begin() as conn:
            conn.execute(
                update(c)
                .where(c.c.id == contact_id)
                .values(email=None, first_name="", last_name="", erased_at=at, updated_at=at)
            )
