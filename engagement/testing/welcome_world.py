"""A world for delivery harnesses: N members, one welcome email each, sent through SendGrid.

The crash test and the 100k benchmark both build it: `write` lays out the journey and config,
`queue` loads the people and runs one tick with email paused, so every email waits `queued`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from engagement import config
from engagement.clock import SystemClock
from engagement.delivery.recording import RecordingEmail, RecordingWebhook
from engagement.engine import Engine
from engagement.evaluation.tick import TickReport
from engagement.store import schema
from engagement.store.database import Database

JOURNEY_ID = "welcome"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Sophie"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman"]
COMPANY = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne"]
JOURNEY = f"""\
id: {JOURNEY_ID}
name: Welcome
status: active
trigger: {{condition: {{contact.role: member}}}}
steps:
  - id: welcome
    email:
      template: onboarding/welcome
      subject: "Welcome aboard, {{{{ contact.first_name }}}}"
"""
CONFIG = """\
[database]
url = "sqlite:///{db}"
[journeys]
dir = "journeys"
[templates]
dir = "{templates}"
[email]
provider = "sendgrid"
from = "Welcome World <success@welcome-world.test>"
reply_to = "Welcome World Success <help@welcome-world.test>"
[company]
name = "Welcome World Test, Inc."
postal_address = "1 Test Street, Testville, OR 97000, USA"
[email.sendgrid]
api_url = "{api_url}"
api_key = "{api_key}"
timeout_seconds = 10
[limits]
in_flight = {in_flight}
sending_lease = "{lease}"
[scheduler]
tick_seconds = {tick_seconds}
"""


def write(folder: Path, *, api_url: str, api_key: str, in_flight: int, tick_seconds: int = 60,
          lease: str = "10m") -> Path:  # fmt: skip
    """Write the journey and a config (SQLite file `engagement.db` in `folder`); return the config path."""
    (folder / "journeys").mkdir(exist_ok=True)
    (folder / "journeys" / f"{JOURNEY_ID}.yaml").write_text(JOURNEY)
    path = folder / "config.toml"
    path.write_text(
        CONFIG.format(db=folder / "engagement.db", templates=TEMPLATES, api_url=api_url, api_key=api_key,
                      in_flight=in_flight, lease=lease, tick_seconds=tick_seconds)
    )  # fmt: skip
    return path


def people(count: int, *, per_account: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """`count` members in count/per_account accounts, each with their own name and company."""
    now = SystemClock().now()
    accounts = max(1, count // per_account)
    account_rows: list[dict[str, object]] = [
        {"id": f"a{i:06d}", "name": f"{COMPANY[i % len(COMPANY)]} {i}", "plan": "pro", "touch": "tech",
         "signed_up_at": now - timedelta(days=3), "traits": {}}
        for i in range(accounts)
    ]  # fmt: skip
    contact_rows: list[dict[str, object]] = [
        {"id": f"c{i:06d}", "account_id": f"a{i % accounts:06d}", "email": f"c{i:06d}@example.com",
         "first_name": f"{FIRST[i % len(FIRST)]}{i}", "last_name": LAST[i % len(LAST)], "role": "member",
         "timezone": "UTC", "created_at": now - timedelta(days=1), "traits": {}}
        for i in range(count)
    ]  # fmt: skip
    return account_rows, contact_rows


def queue(
    settings: config.Settings, db: Database, count: int, *, per_account: int
) -> tuple[Engine, TickReport]:
    """Load the people and tick once with email paused: every welcome email waits `queued`.

    Returns the engine that ticked (its email provider is a recorder) and its tick's report.
    """
    accounts, contacts = people(count, per_account=per_account)
    with db.begin() as conn:
        for start in range(0, len(accounts), 5000):
            conn.execute(schema.accounts.insert(), accounts[start : start + 5000])
        for start in range(0, len(contacts), 5000):
            conn.execute(schema.contacts.insert(), contacts[start : start + 5000])
    engine = Engine(settings, database=db, email=RecordingEmail(), webhooks=RecordingWebhook())
    now = SystemClock().now()
    engine.ports.email_paused_until = now + timedelta(days=1)
    return engine, engine.tick(now)
