"""Tick time, the naive per-contact loop and peak memory at 100k / 300k / 1M contacts, SQLite and PostgreSQL.

Run: .venv/bin/python bench/scale.py [--sizes 100000,300000] [--backends sqlite,postgresql]
     [--postgres-url URL] [--naive-sample 1000] [--json FILE]

Per size and backend: a fresh database is bulk-loaded with contacts in contacts/5 accounts and their
event histories (deterministic, seeded), with those events credited into scores as the running
server's scorer would have credited them as they arrived (timed apart: "credit_seconds"), then
- "naive": the same evaluation as the first tick, one contact (or account) at a time through the ORM
  (a query per fact, conditions in Python, enrollments and deliveries added to a session), over an even
  sample of subjects; its time is extrapolated to all subjects and the work is rolled back;
- "first tick": the real tick at NOW over 10 journeys (all four trigger families): enroll, advance and
  queue every due message. With send=False nothing is rendered or sent (sending is measured by
  bench/send_100k.py); the naive loop does not send either;
- "steady tick": the next tick a minute later, when nothing new is due (nothing sent either).
Each tick runs in its own process, so its peak RSS is that tick's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from engagement import config
from engagement.conditions import pure
from engagement.delivery.ids import delivery_id
from engagement.delivery.recording import CountingEmail, RecordingWebhook
from engagement.engine import Engine
from engagement.evaluation import holdout, stepper, tick
from engagement.journeys.catalog import Journey
from engagement.scores import scoring
from engagement.store import migrate, schema
from engagement.store.database import Database

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
SEED = 1
PLANS = [("free", 30), ("starter", 30), ("pro", 25), ("business", 12), ("cancelled", 3)]
ROLES = [("admin", 25), ("member", 60), ("viewer", 15)]
ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "UTC"]
CHUNK = 20_000

# Six journeys beside the four shipped ones, so ten in all, covering the four trigger families with
# event, milestone and condition triggers, contact and account audiences.
EXTRA_JOURNEYS = {
    "share-thanks.yaml": """
id: share-thanks
name: Thanks for sharing
status: active
trigger: {event: report_shared}
lookback: 1d
re_entry: always
steps:
  - id: thanks
    email: {template: adoption/first-report-tips, subject: "Thanks for sharing"}
""",
    "connected-next.yaml": """
id: connected-next
name: Connected, now build
status: active
trigger: {milestone: integration_connected}
lookback: 2d
goal: {milestone: first_report_created}
steps:
  - id: next-step
    in_app: {title: Build a report, body: Your data is connected.}
  - wait: 3d
  - id: nudge-email
    email: {template: onboarding/stalled, subject: "Your data is waiting"}
""",
    "red-health.yaml": """
id: red-health
name: Red health rescue
status: active
trigger: {condition: {all: [{health: red}, {account.plan: {in: [pro, business]}}]}}
re_entry: {after: 30d}
steps:
  - id: rescue
    email: {template: adoption/we-miss-you, subject: "Can we help?"}
""",
    "power-users.yaml": """
id: power-users
name: Power users
status: active
trigger: {condition: {event_count: {event: active_day, within: 7d, gte: 5}}}
filter: {contact.role: {in: [admin, member]}}
re_entry: never
steps:
  - id: upsell
    in_app: {title: Try scheduled reports, body: You use Chartwell a lot.}
""",
    "connect-late.yaml": """
id: connect-late
name: Still not connected
status: active
trigger:
  condition:
    all:
      - days_since: {field: contact.created_at, gte: 30}
      - not: {milestone: integration_connected}
re_entry: {after: 60d}
exit: {account.plan: cancelled}
steps:
  - id: connect-help
    email: {template: onboarding/stalled, subject: "Connect your data"}
""",
    "account-at-risk.yaml": """
id: account-at-risk
name: Account at risk
status: active
audience: account
recipients: {contact.role: admin}
trigger: {condition: {all: [{account_score: {lt: 20}}, {days_until: {field: account.renewal_date, lte: 120}}]}}
re_entry: {after: 90d}
steps:
  - id: at-risk
    email: {template: renewal/reminder, subject: "{{ account.name }} renews soon"}
""",
}
CONFIG = """\
[database]
url = "{url}"
[journeys]
dir = "journeys"
[templates]
dir = "{templates}"
[webhooks.csm-alerts]
url = "https://hooks.example.com/csm"
"""


def weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


def rows(contacts: int, seed: int = SEED) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The customer base in chunks: ("account" | "contact" | "event" | ..., rows), deterministic."""
    rng = random.Random(seed)
    accounts = max(1, contacts // 5)
    batch: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    for i in range(accounts):
        batch.append(
            {"id": f"a{i}", "name": f"Account {i}", "plan": weighted(rng, PLANS), "mrr": rng.choice([0, 49, 299]),
             "touch": "tech", "touch_explicit": False, "signed_up_at": NOW - timedelta(days=rng.randint(1, 700)),
             "renewal_date": date(2026, 3, 2) + timedelta(days=rng.randint(0, 365)), "traits": "{}"}
        )  # fmt: skip
        scores.append({"account_id": f"a{i}", "value": rng.uniform(0, 100), "as_of_day": 20513.0})
        if len(batch) >= CHUNK:
            yield "account", batch
            yield "account_score", scores
            batch, scores = [], []
    yield "account", batch
    yield "account_score", scores
    events: list[dict[str, Any]] = []
    batch, scores = [], []
    for i in range(contacts):
        cid, aid = f"c{i}", f"a{i % accounts}"
        # one in 400 signed up in the last day (about the daily signups of a 1M-user product)
        recent = rng.random() < 0.0025
        created = NOW - (
            timedelta(hours=rng.uniform(0.1, 20)) if recent else timedelta(days=rng.uniform(1, 400))
        )
        batch.append(
            {"id": cid, "account_id": aid, "email": f"{cid}@example.com", "first_name": "Sam", "last_name": "Lee",
             "role": weighted(rng, ROLES), "timezone": rng.choice(ZONES), "created_at": created, "traits": "{}"}
        )  # fmt: skip
        scores.append({"contact_id": cid, "value": rng.uniform(0, 100), "as_of_day": 20513.0})

        def event(name: str, at: datetime) -> None:
            events.append({"contact_id": cid, "account_id": aid, "name": name, "timestamp": at})  # noqa: B023

        event("signed_up", created)
        age = (NOW - created).total_seconds() / 86400
        if rng.random() < 0.7:
            event("integration_connected", created + timedelta(days=rng.uniform(0, min(age, 10))))
        if rng.random() < 0.6:
            event("first_report_created", created + timedelta(days=rng.uniform(0, min(age, 20))))
        for _ in range(rng.choice([0, 1, 2, 3, 5, 8])):
            event("active_day", NOW - timedelta(days=rng.uniform(0, min(age, 20))))
        if rng.random() < 0.002:
            event("report_shared", NOW - timedelta(hours=rng.uniform(0, 20)))
        if len(batch) >= CHUNK:
            yield "contact", batch
            yield "contact_score", scores
            yield "event", events
            batch, scores, events = [], [], []
    yield "contact", batch
    yield "contact_score", scores
    yield "event", events


def build(url: str, contacts: int) -> dict[str, float]:
    """A migrated database holding the customer base; returns seconds taken and rows loaded."""
    db = Database(url)
    migrate.upgrade(db)
    started = time.perf_counter()
    loaded = {"accounts": 0, "contacts": 0, "events": 0}
    with db.begin() as conn:
        raw = conn.connection.dbapi_connection
        for table, chunk in rows(contacts):
            if not chunk:
                continue
            if table == "event":
                for r in chunk:
                    r.update(properties="{}", source="bench", received_at=NOW)
            loaded[table + "s"] = loaded.get(table + "s", 0) + len(chunk)
            _load(db.dialect, raw, table, chunk)
        conn.exec_driver_sql(
            "INSERT INTO milestone (contact_id, name, account_id, reached_at) "
            "SELECT contact_id, name, min(account_id), min(timestamp) FROM event GROUP BY contact_id, name"
        )
        conn.exec_driver_sql(
            "INSERT INTO account_milestone (account_id, name, reached_at) "
            "SELECT account_id, name, min(timestamp) FROM event GROUP BY account_id, name"
        )
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "ANALYZE" if db.dialect == "sqlite" else "VACUUM ANALYZE"
        )
    seconds = time.perf_counter() - started
    credited = credit_history(db)
    db.dispose()
    return {"seconds": seconds, **loaded, **credited}


def credit_history(db: Database) -> dict[str, float]:
    """Credit the loaded events into scores, as the running server's scorer does while events arrive.

    Two passes a minute apart before NOW: on PostgreSQL the scorer settles a range only on the pass after
    it read it (scoring.py), so the ticks at NOW find nothing left to credit, as in a running deployment.
    Timed apart from the load and from the ticks; the naive loop reads the scores as they are too.
    """
    settings = config.Settings()
    started = time.perf_counter()
    credits = scoring.credit(db, settings, NOW - timedelta(minutes=2))
    scoring.credit(db, settings, NOW - timedelta(minutes=1))
    return {"credit_seconds": time.perf_counter() - started, "credits": credits}


def _load(dialect: str, raw: Any, table: str, chunk: list[dict[str, Any]]) -> None:
    """Bulk-load rows: COPY on PostgreSQL, executemany on SQLite (times as SQLAlchemy stores them)."""
    columns = list(chunk[0])
    if dialect == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for r in chunk:
                copy.write_row([r[c] for c in columns])
        return
    marks = ", ".join("?" for _ in columns)
    raw.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
        [tuple(_sqlite_value(r[c]) for c in columns) for r in chunk],
    )


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def write_config(folder: Path, url: str) -> Path:
    journeys = folder / "journeys"
    journeys.mkdir(exist_ok=True)
    for shipped in (ROOT / "journeys").iterdir():
        (journeys / shipped.name).write_text(shipped.read_text())
    for name, body in EXTRA_JOURNEYS.items():
        (journeys / name).write_text(body.lstrip())
    path = folder / "config.toml"
    path.write_text(CONFIG.format(url=url, templates=ROOT / "templates" / "email"))
    return path


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB, since it started its program.

    /proc's VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across execve, so a child started
    by a parent that had grown large (the build credits 5.47M events at 1M) would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tick_once(config_path: str, at: str) -> None:
    """Child process: one tick at `at` with send=False; prints seconds, counts, peak RSS as JSON."""
    engine = Engine(config.load(config_path), email=CountingEmail(), webhooks=RecordingWebhook())
    started = time.perf_counter()
    report = tick.run(
        engine.db, engine.settings, engine.catalog, engine.renderer, engine.ports,
        datetime.fromisoformat(at), send=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    out = {"seconds": seconds, "enrolled": report.total("enrolled"), "queued": report.total("queued"),
           "peak_rss_mb": peak_mb}  # fmt: skip
    print(json.dumps(out))


def naive_once(config_path: str, at: str, sample: int) -> None:
    """Child process: the first tick's evaluation one subject at a time, on a sample; prints JSON."""
    settings = config.load(config_path)
    engine = Engine(settings, email=CountingEmail(), webhooks=RecordingWebhook())
    now = datetime.fromisoformat(at)
    active = [j for j in engine.catalog.journeys.values() if j.status == "active"]
    figures: dict[str, Any] = {}
    with Session(engine.db.engine) as session:
        for audience, model in (("contact", schema.Contact), ("account", schema.Account)):
            journeys = [j for j in active if j.audience == audience]
            total = session.scalar(select(func.count()).select_from(model)) or 0
            step = max(1, total // sample)
            ids = list(session.scalars(select(model.id).order_by(model.id)))[::step][:sample]  # type: ignore[attr-defined]
            started = time.perf_counter()
            enrolled = 0
            for subject_id in ids:
                enrolled += _naive_subject(session, settings, journeys, audience, subject_id, now)
            seconds = time.perf_counter() - started
            session.rollback()
            figures[audience] = {
                "sampled": len(ids),
                "total": total,
                "seconds": seconds,
                "enrolled_in_sample": enrolled,
                "extrapolated_seconds": seconds / max(1, len(ids)) * total,
            }
    figures["extrapolated_seconds"] = sum(f["extrapolated_seconds"] for f in figures.values())
    print(json.dumps(figures))


def _naive_subject(
    session: Session, settings: config.Settings, journeys: list[Journey], audience: str, subject_id: str,
    now: datetime,
) -> int:  # fmt: skip
    """Load one subject's facts with one query each, decide every journey in Python, add the rows."""
    if audience == "contact":
        contact = session.get(schema.Contact, subject_id)
        assert contact is not None
        account = session.get(schema.Account, contact.account_id)
        miles = session.scalars(select(schema.Milestone).where(schema.Milestone.contact_id == subject_id))
        evs = session.scalars(select(schema.Event).where(schema.Event.contact_id == subject_id)).all()
        score = session.get(schema.ContactScore, subject_id)
        account_score = session.get(schema.AccountScore, contact.account_id)
        facts = pure.Facts(
            account=account.model_dump() if account else {},
            contact=contact.model_dump(),
            milestones={m.name: m.reached_at for m in miles},
            events=[(e.name, e.timestamp) for e in evs],
            score=(score.value, score.as_of_day) if score else None,
            account_score=(account_score.value, account_score.as_of_day) if account_score else None,
        )
    else:
        found = session.get(schema.Account, subject_id)
        assert found is not None
        miles = session.scalars(
            select(schema.AccountMilestone).where(schema.AccountMilestone.account_id == subject_id)
        )
        evs = session.scalars(select(schema.Event).where(schema.Event.account_id == subject_id)).all()
        account_score = session.get(schema.AccountScore, subject_id)
        facts = pure.Facts(
            account=found.model_dump(),
            milestones={m.name: m.reached_at for m in miles},
            events=[(e.name, e.timestamp) for e in evs],
            account_score=(account_score.value, account_score.as_of_day) if account_score else None,
        )
    enrolled = 0
    for journey in journeys:
        ctx = tick.context(settings, journey, now)
        past = session.scalars(
            select(schema.Enrollment).where(
                schema.Enrollment.journey_id == journey.id, schema.Enrollment.subject_id == subject_id
            )
        ).all()
        if not _naive_admits(journey, facts, ctx, past, now):
            continue
        account_id = facts.account.get("id")
        held = holdout.in_holdout(
            journey.id, subject_id, journey.holdout, by=journey.holdout_by, account_id=account_id
        )
        row = schema.Enrollment(
            journey_id=journey.id, audience=audience, subject_id=subject_id, account_id=account_id,
            holdout=held, state="active", step_id=journey.program[0].step_id, next_action_at=now, entered_at=now,
        )  # fmt: skip
        session.add(row)
        session.flush()
        enrolled += 1
        decision = stepper.decide(
            journey.program, 0, None, now, lambda c, ctx=ctx: pure.evaluate(c, facts, ctx),
            holdout=row.holdout, due_since=now,
        )  # fmt: skip
        recipients = [subject_id]
        if audience == "account":
            recipients = list(
                session.scalars(
                    select(schema.Contact.id).where(
                        schema.Contact.account_id == subject_id, schema.Contact.role == "admin"
                    )
                )
            )
        assert row.id is not None
        for instr, moment in decision.messages:
            for recipient in recipients:
                session.add(
                    schema.Delivery(
                        id=delivery_id(row.id, instr.step_id, recipient), enrollment_id=row.id,
                        journey_id=journey.id, step_id=instr.step_id, channel=instr.kind, recipient=recipient,
                        contact_id=recipient, status="queued", due_at=moment, created_at=now, updated_at=now,
                    )
                )  # fmt: skip
        row.step_id = decision.step_id
        row.next_action_at = decision.next_action_at
        session.flush()
    return enrolled


def _naive_admits(
    journey: Journey, facts: pure.Facts, ctx: Any, past: list[schema.Enrollment], now: datetime
) -> bool:
    trigger = journey.spec.trigger
    if trigger.kind == "event":
        if not any(n == trigger.event and now - journey.spec.lookback < t <= now for n, t in facts.events):
            return False
    elif trigger.kind == "milestone":
        reached = facts.milestones.get(trigger.milestone or "")
        if reached is None or not now - journey.spec.lookback < reached <= now:
            return False
    elif journey.trigger is not None and not pure.evaluate(journey.trigger, facts, ctx):
        return False
    if journey.filter is not None and not pure.evaluate(journey.filter, facts, ctx):
        return False
    for cond in (journey.goal, journey.exit):
        if cond is not None and pure.evaluate(cond, facts, ctx):
            return False
    if journey.spec.re_entry == "never":
        return not past
    return not any(e.state == "active" for e in past)


def child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def empty_postgres(url: str) -> None:
    """Drop everything in the PostgreSQL database's public schema (tables, triggers, functions)."""
    db = Database(url)
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.dispose()


def run_one(size: int, backend: str, pg_url: str, sample: int, folder: Path) -> dict[str, Any]:
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'bench-{size}.db'}"
    else:
        url = pg_url
        empty_postgres(url)
    cfg = str(write_config(folder, url))
    built = build(url, size)
    print(f"  built {backend} {size:,}: {json.dumps(built)}", flush=True)
    naive = child("--naive", cfg, NOW.isoformat(), str(sample))
    print(f"  naive: {json.dumps(naive)}", flush=True)
    first = child("--tick", cfg, NOW.isoformat())
    print(f"  first tick: {json.dumps(first)}", flush=True)
    steady = child("--tick", cfg, (NOW + timedelta(minutes=1)).isoformat())
    print(f"  steady tick: {json.dumps(steady)}", flush=True)
    if backend == "sqlite" and os.environ.get("BENCH_KEEP") is None:
        Path(url.removeprefix("sqlite:///")).unlink()
    return {
        "size": size,
        "backend": backend,
        "build": built,
        "naive": naive,
        "first": first,
        "steady": steady,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get("ENGAGEMENT_BENCH_POSTGRES_URL", ""))
    parser.add_argument("--naive-sample", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="append each result as a JSON line to this file")
    parser.add_argument("--tick", nargs=2)
    parser.add_argument("--naive", nargs=3)
    args = parser.parse_args()
    if args.tick:
        tick_once(*args.tick)
        return
    if args.naive:
        naive_once(args.naive[0], args.naive[1], int(args.naive[2]))
        return
    results = []
    for backend in args.backends.split(","):
        if backend == "postgresql" and not args.postgres_url:
            sys.exit("--postgres-url (or ENGAGEMENT_BENCH_POSTGRES_URL) is needed for the postgresql backend")
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as folder:
                result = run_one(size, backend, args.postgres_url, args.naive_sample, Path(folder))
            results.append(result)
            if args.json:
                with args.json.open("a") as out:
                    out.write(json.dumps(result) + "\n")
    print(
        f"\n{'backend':>10} {'contacts':>9} {'build s':>8} {'first s':>8} {'enrolled':>9} {'queued':>8} "
        f"{'RSS MB':>7} {'steady s':>9} {'RSS MB':>7} {'naive s (extrap.)':>18} {'ratio':>6}"
    )
    for r in results:
        first, steady, naive = r["first"], r["steady"], r["naive"]
        print(
            f"{r['backend']:>10} {r['size']:>9,} {r['build']['seconds']:>8.1f} {first['seconds']:>8.2f} "
            f"{first['enrolled']:>9,} {first['queued']:>8,} {first['peak_rss_mb']:>7.0f} {steady['seconds']:>9.2f} "
            f"{steady['peak_rss_mb']:>7.0f} {naive['extrapolated_seconds']:>18.1f} "
            f"{naive['extrapolated_seconds'] / first['seconds']:>6.1f}"
        )


if __name__ == "__main__":
    main()
