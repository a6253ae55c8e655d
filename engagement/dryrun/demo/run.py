"""`engagement demo`: a fresh working folder, a generated customer base, 60 simulated days."""

from __future__ import annotations

import secrets
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import case, func, select

from engagement import config, errors, vocab
from engagement.clock import ManualClock
from engagement.dryrun.demo import dataset, revenue, signals
from engagement.dryrun.demo import health as demo_health
from engagement.dryrun.demo import surveys as demo_surveys
from engagement.dryrun.demo.responses import Customers
from engagement.engine import Engine
from engagement.ingest import importer
from engagement.ingest import upserts as ingest
from engagement.ingest.records import AccountIn, ContactIn, EventIn
from engagement.reports import build, journey_retention, retention
from engagement.reports.model import Retention
from engagement.reports.period import Period
from engagement.reports.tables import display
from engagement.scores import score_view, scoring
from engagement.store import migrate, schema
from engagement.store.database import Database

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; fixed so every run tells the same story
TICK = timedelta(hours=2)
MARKER = ".engagement-demo"
REPO = Path(__file__).resolve().parents[3]
CONFIG = """# Written by `engagement demo`. Point any command here with --config {dir}/config.toml
[database]
url = "sqlite:///engagement.db"
[journeys]
dir = "journeys"
[templates]
dir = "templates/email"
[email]
provider = "outbox"
from = "Chartwell <success@chartwell.example>"
reply_to = "Chartwell Customer Success <help@chartwell.example>"
[email.outbox]
dir = "outbox"
[notify]
provider = "outbox"
[webhooks.csm-alerts]
url = "https://hooks.example.com/services/csm-alerts"
# signing secrets made for this folder (secrets.token_urlsafe), never the published default
[unsubscribe]
secret = "{unsubscribe}"
[inapp]
token_secret = "{inapp}"
[reports]
session_secret = "{session}"
# the demo simulates {days} days, so it judges journeys on retention {window} after entry (default 90d)
retention_window = "{window}"
# and reads each renewal's health band three weeks before it (default 90d)
calibration_lead = "21d"
"""


@dataclass
class Summary:
    """One journey's headline numbers."""

    journey: str
    entered: int
    holdout: int
    emails: int
    nudges: int
    notifies: int
    converted: int
    converted_holdout: int


def prepare(directory: Path, days: int = 60) -> Path:
    """Make `directory` a fresh demo folder (only ever wiping a folder a demo made)."""
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise errors.EngagementError(
            f"{directory} exists and was not made by `engagement demo`; pick another --dir"
        )
    for source in (REPO / "journeys", REPO / "templates" / "email"):
        if not source.is_dir():
            raise errors.EngagementError(f"cannot find {source}: run the demo from a clone of the repository")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by engagement demo\n")
    shutil.copytree(REPO / "journeys", directory / "journeys")
    shutil.copytree(REPO / "templates" / "email", directory / "templates" / "email")
    made = {key: secrets.token_urlsafe(32) for key in ("unsubscribe", "inapp", "session")}
    window = f"{max(1, days - 1)}d"  # entries of the first day are judged by the last
    (directory / "config.toml").write_text(CONFIG.format(dir=directory, days=days, window=window, **made))
    return directory / "config.toml"


def main(directory: Path, *, days: int = 60, console: Console | None = None) -> list[Summary]:
    """Run the whole demo and print the per-journey summary."""
    console = console or Console()
    began = time.perf_counter()
    settings = config.load(prepare(directory, days))
    db = Database(settings.database_url)
    migrate.upgrade(db)
    data = dataset.generate(start=START, days=days)
    history = dataset.split_by_time(data, START)
    folder = directory / "data"
    folder.mkdir()
    dataset.write_csv(history.accounts, folder / "accounts.csv")
    dataset.write_csv(history.contacts, folder / "contacts.csv")
    dataset.write_jsonl(history.events, folder / "events.jsonl")
    for kind, name in (
        ("accounts", "accounts.csv"),
        ("contacts", "contacts.csv"),
        ("events", "events.jsonl"),
    ):
        importer.import_file(db, settings, kind, folder / name, START)
    console.print(
        f"imported {len(history.accounts)} accounts, {len(history.contacts)} contacts and "
        f"{len(history.events)} events of history into {settings.database_url}"
    )

    clock = ManualClock(START)
    engine = Engine(settings, clock=clock, database=db)
    people = Customers(db, seed=7)
    end = START + timedelta(days=days)
    steps = int((end - START) / TICK)
    columns = (
        TextColumn("simulating {task.fields[day]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} ticks"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("demo", total=steps, day=START.date().isoformat())
        arrivals = _by_tick(dataset.between(data, START, end))
        now = START
        for index in range(1, steps + 1):
            now = clock.advance(TICK)
            _arrive(db, settings, arrivals.get(index, dataset.Dataset([], [], [])), now)
            if now.hour == 12:
                people.live(now)
            sent = engine.tick(now).dispatched.sent_ids
            if sent:  # nothing sent, nothing to react to
                people.respond(now, sent)
            if now.hour == 0:
                scoring.snapshot(db, settings, now)  # daily score bands, for trend reports
            bar.update(task, advance=1, day=now.date().isoformat())
    summaries = summarize(db)
    revenue.record(db, data.accounts, START, end)
    signals.record(db, data.accounts, START, end)
    kept = renewal_retention(db, settings, end)
    scoring.credit(db, settings, end)
    with db.begin() as conn:
        health = {
            audience: score_view.bands(conn, settings, audience, end) for audience in ("account", "contact")
        }
    line = "; ".join(
        _distribution(audience, health[audience], settings) for audience in ("account", "contact")
    )
    answered = _surveys(db, settings, end)
    scorecard_lines = demo_health.summary(REPO, directory, db, settings, START, end)
    month = retention.last_month_line(db, end)
    seconds = time.perf_counter() - began
    _print(
        console,
        summaries,
        people,
        settings,
        directory,
        seconds,
        (line, scorecard_lines),
        (month, kept),
        answered,
        days,
    )
    return summaries


def _surveys(db: Database, settings: config.Settings, end: datetime) -> str:
    """Simulated answers to the survey messages the journeys sent (after everything else), and their NPS."""
    steps = {j: list(info.surveys) for j, info in build.infos_from_settings(settings).items()}
    demo_surveys.answer(db, steps, seed=7, end=end, troubled=signals.churned(db, START, end))
    return demo_surveys.summary(db, steps, Period(START, end))


def _distribution(audience: str, counts: Counter[str], settings: config.Settings) -> str:
    """How many are in each band, with their share and the bands' limits."""
    total = sum(counts.values()) or 1
    bands = settings.scoring.bands_of(audience)
    shares = ", ".join(
        f"{band} {counts[band]} ({100 * counts[band] / total:.0f}%)" for band in ("green", "yellow", "red")
    )
    return f"{audience}s {shares} (green >= {bands.green:g}, yellow >= {bands.yellow:g})"


def _by_tick(new: dataset.Dataset) -> dict[int, dataset.Dataset]:
    """Rows of the simulated window grouped by the tick that first sees them."""
    buckets: dict[int, dataset.Dataset] = {}

    def bucket(at: object) -> dataset.Dataset:
        assert isinstance(at, datetime)
        index = -(-(at - START) // TICK)  # ceiling: a row at 10:30 arrives with the 12:00 tick
        return buckets.setdefault(index, dataset.Dataset([], [], []))

    for row in new.accounts:
        bucket(row["signed_up_at"]).accounts.append(row)
    for row in new.contacts:
        bucket(row["created_at"]).contacts.append(row)
    for row in new.events:
        bucket(row["timestamp"]).events.append(row)
    return buckets


def _arrive(db: Database, settings: config.Settings, new: dataset.Dataset, now: datetime) -> None:
    """Signups of the last interval reach the engine, as the product would send them."""
    if not (new.accounts or new.contacts or new.events):
        return
    with db.begin() as conn:
        ingest.upsert_accounts(
            db, conn, [AccountIn.model_validate(r) for r in new.accounts], settings.touch, now
        )
        ingest.upsert_contacts(db, conn, [ContactIn.model_validate(r) for r in new.contacts], now)
        ingest.insert_events(db, conn, [EventIn.model_validate(r) for r in new.events], now)


def summarize(db: Database) -> list[Summary]:
    """Entered, holdout, sent by channel and conversions per journey."""
    en, d = schema.enrollments, schema.deliveries
    with db.begin() as conn:
        entered = conn.execute(
            select(
                en.c.journey_id,
                func.count(),
                func.sum(case((en.c.holdout, 1), else_=0)),
                func.sum(
                    case(((en.c.outcome == vocab.EnrollmentOutcome.CONVERTED) & ~en.c.holdout, 1), else_=0)
                ),
                func.sum(
                    case(((en.c.outcome == vocab.EnrollmentOutcome.CONVERTED) & en.c.holdout, 1), else_=0)
                ),
            ).group_by(en.c.journey_id)
        ).all()
        sent = conn.execute(
            select(d.c.journey_id, d.c.channel, func.count())
            .where(d.c.status == vocab.DeliveryStatus.SENT)
            .group_by(d.c.journey_id, d.c.channel)
        ).all()
    by_channel = {(j, ch): n for j, ch, n in sent}
    return [
        Summary(
            j,
            n,
            int(h or 0),
            by_channel.get((j, "email"), 0),
            by_channel.get((j, "in_app"), 0),
            by_channel.get((j, "notify"), 0),
            int(conv or 0),
            int(conv_h or 0),
        )
        for j, n, h, conv, conv_h in sorted(entered)
    ]


def renewal_retention(db: Database, settings: config.Settings, end: datetime) -> Retention:
    """The renewal journey judged on (simulated) retention, over its entries of the simulated days."""
    journey = revenue.RENEWAL_JOURNEY
    window, least = settings.reports.retention_window, settings.reports.min_sample
    with db.begin() as conn:
        return journey_retention.retention(conn, Period(START, end), [journey], window, end, least)[journey]


def retention_lines(kept: Retention, month_retention: str | None = None) -> list[str]:
    """The summary's revenue lines: the month's GRR/NRR (`month_retention`, from the monthly retention
    report) and the renewal journey's retention lift."""
    t, h = kept.treatment, kept.holdout
    lift = "–" if kept.kept_lift is None else display("kept_lift", kept.kept_lift)
    if kept.kept_low is not None and kept.kept_high is not None:
        lift += f" [{display('kept_lift', kept.kept_low)}, {display('kept_lift', kept.kept_high)}]"
    lines = [month_retention] if month_retention else []
    lines.append(
        f"Renewal journey ({revenue.RENEWAL_JOURNEY}) on simulated revenue, {kept.window_days:g} days after entry: "
        f"still paying {t.still_paying}/{t.paying_at_entry} treated ({display('kept_rate', t.kept_rate)}) vs "
        f"{h.still_paying}/{h.paying_at_entry} holdout ({display('kept_rate', h.kept_rate)}), lift {lift}"
    )
    lines.append(
        f"  net MRR retained {display('net_mrr_retained', t.net_mrr_retained)} vs "
        f"{display('net_mrr_retained', h.net_mrr_retained)}; {t.pending + h.pending} entries pending; "
        f"{kept.verdict}"
    )
    return lines


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _print(
    console: Console,
    summaries: list[Summary],
    people: Customers,
    settings: config.Settings,
    directory: Path,
    seconds: float,
    health: tuple[str, list[str]],
    kept: tuple[str, Retention],
    answered: str,
    days: int,
) -> None:
    if not console.is_terminal:
        console.width = max(console.width, 132)
    table = Table(
        "journey",
        "entered",
        "holdout",
        "emails",
        "nudges",
        "alerts",
        "converted",
        "treated %",
        "holdout %",
        title=f"Per-journey summary ({days} simulated days)",
    )
    for s in summaries:
        treated = s.entered - s.holdout
        table.add_row(
            s.journey,
            str(s.entered),
            str(s.holdout),
            str(s.emails),
            str(s.nudges),
            str(s.notifies),
            str(s.converted + s.converted_holdout),
            _rate(s.converted, treated),
            _rate(s.converted_holdout, s.holdout),
        )
    console.print(table)
    outbox = settings.path(settings.email.outbox.dir)
    emails = len(list(outbox.glob("*.eml")))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(people.counts.items()))
    console.print(f"[dim]Simulated responses (clearly labelled simulated in the database): {counts}[/dim]")
    console.print(answered, markup=False)
    console.print(f"Health at the end (engagement scores): {health[0]}")
    for text in health[1]:
        console.print(text, markup=False)
    for line in retention_lines(kept[1], kept[0]):
        console.print(line, markup=False)
    console.print(f"Outbox: {emails} .eml files in {outbox}")
    console.print(f"Database: {settings.database_url}")
    console.print(
        f"Try: engagement --config {directory}/config.toml preview onboarding-first-report welcome --contact <id>"
    )
    console.print(f"Done in {seconds:.1f}s.")
