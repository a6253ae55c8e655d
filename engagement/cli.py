"""The `engagement` command."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Connection, func, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from engagement import config, errors, values, vocab
from engagement.clock import SystemClock, parse_instant
from engagement.delivery import suppression
from engagement.durations import parse_duration
from engagement.ingest import importer, records
from engagement.journeys import catalog as catalogs
from engagement.journeys import files, spec
from engagement.reports import spreadsheet
from engagement.store import schema
from engagement.store.database import Database, select

if TYPE_CHECKING:
    from engagement.delivery.dispatch import Dispatched
    from engagement.engine import Engine
    from engagement.health.cards import Cards

app = typer.Typer(
    help="Tech-touch customer success engine: journeys as code.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sup_app = typer.Typer(help="The suppression list (addresses never emailed).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sup_app, name="suppressions")
contacts_app = typer.Typer(help="Contacts: data rights.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")
out = Console()
err = Console(stderr=True)


class State:
    config_path: Path | None = None


def settings() -> config.Settings:
    """Settings from --config / ENGAGEMENT_CONFIG / ./config.toml."""
    return config.load(State.config_path)


def database(current: config.Settings, *, ready: bool = True) -> Database:
    """The configured database, checked to have its tables."""
    try:
        db = Database(current.database_url)
    except (
        ArgumentError,
        ImportError,
    ) as exc:  # a malformed URL, an unknown dialect or a driver not installed
        raise errors.ConfigError(f"database.url {_redacted(current.database_url)!r}: {exc}") from exc
    if ready:
        db.check_ready()
    return db


def now_or(value: str | None) -> datetime:
    """`--now` as an aware UTC instant, or the system clock."""
    if value is None:
        return SystemClock().now()
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise errors.EngagementError(f"--now: not an ISO 8601 instant: {value!r}") from exc


@app.callback()
def main_options(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="config file (default ./config.toml)")
    ] = None,
) -> None:
    """Tech-touch customer success engine: journeys as code."""
    State.config_path = config_file


@app.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="journey files or folders")] = None,
) -> None:
    """Check journey files and their templates (and, without PATHS, the scorecards in health.dir); every
    problem as file:line: field: message."""
    current = settings()
    found, cards = _valid(paths, current)
    if not found.journeys and not cards.cards:  # a wrong folder must not read as a pass
        searched = ", ".join(str(p) for p in paths or [current.path(current.journeys.dir)])
        err.print(
            f"[red]no journey files[/red] ({', '.join(files.SUFFIXES)}) in {escape(searched)}", soft_wrap=True
        )
        raise typer.Exit(1)
    if found.journeys:
        out.print(
            f"[green]ok[/green]: {len(found.journeys)} journey(s) valid: {', '.join(sorted(found.journeys))}"
        )
    if cards.cards:
        out.print(
            f"[green]ok[/green]: {len(cards.cards)} scorecard(s) valid: {', '.join(c.id for c in cards.cards)}"
        )


def _valid(paths: list[Path] | None, current: config.Settings) -> tuple[catalogs.Catalog, Cards]:
    """The journeys under `paths` (default the journeys folder, with the scorecards in health.dir); every
    problem printed and exit 1 if any."""
    from engagement.health import cards as scorecards

    found = catalogs.load(paths or [current.path(current.journeys.dir)], current)
    cards = scorecards.load(current) if paths is None else scorecards.Cards([], [])
    problems = found.problems + cards.problems
    for problem in problems:
        print(problem)
    if problems:
        err.print(f"[red]{len(problems)} problem(s)[/red] in journey and scorecard files")
        raise typer.Exit(1)
    return found, cards


@app.command()
def plan(
    paths: Annotated[list[Path] | None, typer.Argument(help="journey files or folders")] = None,
    now: Annotated[str | None, typer.Option(help="plan the tick at this ISO 8601 instant")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """What the journey files would change against what the database last ran; writes nothing.

    Exit 0: no changes, or none that moves anyone; 2: enrollments would move or end; 1: invalid files.
    """
    from engagement.dryrun import plan as plans

    if output_format not in ("text", "json"):
        raise errors.EngagementError(f"--format: {output_format!r} is not one of text, json")
    current = settings()
    found, _ = _valid(paths, current)
    made = plans.plan(database(current), current, found, now_or(now), every=not paths)
    if output_format == "json":
        print(json.dumps(made.as_json(), indent=2))
    else:
        for line in plans.lines(made):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(made.exit_code)


@app.command("schema")
def schema_command(
    kind: Annotated[str, typer.Option("--kind", help="journey | scorecard")] = "journey",
) -> None:
    """Print the JSON Schema of journey files, or of scorecard files with --kind scorecard (for editors)."""
    if kind == "scorecard":
        from engagement.health import spec as scorecard_spec

        out.print_json(json.dumps(scorecard_spec.json_schema()))
        return
    if kind != "journey":
        raise errors.EngagementError(f"--kind is journey or scorecard, got {kind!r}")
    out.print_json(json.dumps(spec.json_schema()))


@app.command("import")
def import_command(
    kind: Annotated[str, typer.Argument(help="accounts | contacts | events | revenue")],
    file: Annotated[Path, typer.Argument(help="a .csv (with header) or .jsonl file")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the good rows, report the bad")
    ] = False,
) -> None:
    """Import a file, all rows or none (unless --skip-invalid)."""
    current = settings()
    result = importer.import_file(
        database(current), current, kind, file, SystemClock().now(), skip_invalid=skip_invalid
    )
    for problem in result.problems:
        err.print(f"skipped {problem}", markup=False, highlight=False, soft_wrap=True)
    for repeat in result.repeats[: importer.MAX_SHOWN]:
        err.print(f"note: {repeat}", markup=False, highlight=False, soft_wrap=True)
    notes = [f"skipped {result.skipped} invalid row(s)"] if result.skipped else []
    notes += [f"{len(result.repeats)} row(s) repeat an earlier row's id"] if result.repeats else []
    notes += [f"{result.duplicates} already known by event id"] if result.duplicates else []
    what = "revenue row(s)" if kind == "revenue" else kind  # "imported 4 revenue" read as an amount
    out.print(f"imported {result.imported} {what}" + (f" ({'; '.join(notes)})" if notes else ""))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the current version (and re-create the change-log triggers)."""
    from engagement.store import change_log, migrate

    current = settings()
    db = database(current, ready=False)
    migrate.upgrade(db)
    with db.begin() as conn:  # idempotent; puts back a trigger dropped or disabled by hand
        change_log.create(conn)
    out.print(f"database is at revision {migrate.current(db)}")


@app.command()
def tick(now: Annotated[str | None, typer.Option(help="evaluate at this ISO 8601 instant")] = None) -> None:
    """Run one evaluation pass: enroll, advance, send."""
    from engagement.engine import Engine

    current = settings()
    engine = Engine(current, database=database(current))
    report = engine.tick(now_or(now))
    table = Table(
        "journey",
        "enrolled",
        "converted",
        "exited",
        "completed",
        "queued",
        title=f"tick at {report.now.isoformat()}",
    )
    for journey_id, c in report.journeys.items():
        table.add_row(
            journey_id, *(str(v) for v in (c.enrolled, c.converted, c.exited, c.completed, c.queued))
        )
    out.print(table)
    for move in report.moves:
        out.print(str(move), markup=False, highlight=False)
    for journey_id, why in report.failures.items():
        err.print(
            f"journey {journey_id} failed, its work this tick rolled back (the others ran): {why}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    d = report.dispatched
    out.print(
        f"held {d.held}, skipped late {d.skipped_late}, skipped recent {d.skipped_recent}, in doubt {d.in_doubt},"
        f" rate limited {d.rate_limited}"
    )
    out.print(
        f"sent {d.sent}, suppressed {d.suppressed}, cancelled {d.cancelled}, failed {d.failed} in {report.seconds:.2f}s"
    )
    for line in reasons(d):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if report.failures:
        raise typer.Exit(1)


REASONS_SHOWN = 10  # per outcome; the rest are summed up in one line


def reasons(d: Dispatched) -> list[str]:
    """Why messages failed, were held or are in doubt: `failed 28: template 'x': …`, most frequent first."""
    lines: list[str] = []
    for outcome, label in (
        ("failed", "failed"),
        ("in_doubt", "in doubt"),
        ("rate_limited", "rate limited"),
        ("held", "held"),
    ):
        found = sorted(
            ((n, why) for (kind, why), n in d.reasons.items() if kind == outcome), key=lambda x: (-x[0], x[1])
        )
        for count, why in found[:REASONS_SHOWN]:
            lines.append(f"{label} {count}: {why.removeprefix('held: ')}")
        if len(found) > REASONS_SHOWN:
            rest = sum(n for n, _ in found[REASONS_SHOWN:])
            lines.append(f"{label} {rest}: {len(found) - REASONS_SHOWN} other reasons")
    return lines


@app.command()
def preview(
    journey: Annotated[str, typer.Argument(help="journey id")],
    step: Annotated[str, typer.Argument(help="step id")],
    contact: Annotated[str, typer.Option("--contact", help="contact id")],
    html_out: Annotated[Path | None, typer.Option("--out", help="where to write the HTML")] = None,
    now: Annotated[str | None, typer.Option(help="evaluate the step's `if` at this instant")] = None,
    send_to: Annotated[
        str | None,
        typer.Option(
            "--send-to",
            help="also send this email step, rendered for the contact, to this test address through the "
            "configured provider (marked [test], kept in the test_send ledger, never in reports)",
        ),
    ] = None,
) -> None:
    """Render one step for one contact: subject and text here, HTML to a file; `--send-to` test-sends it."""
    from engagement.delivery.templates import Renderer
    from engagement.dryrun import preview as previews
    from engagement.dryrun import test_send
    from engagement.engine import email_provider

    current = settings()
    renderer = Renderer(current.path(current.templates.dir))
    found = catalogs.load([current.path(current.journeys.dir)], current, renderer)
    found.raise_problems()
    if send_to is not None:
        sent = test_send.send(
            database(current),
            current,
            renderer,
            email_provider(current),
            found.get(journey),
            step,
            contact,
            send_to,
            now_or(now),
            requested_by="cli",
        )
        out.print(f"test send {sent.id}: {sent.subject!r} sent to {sent.to} (provider id {sent.provider_message_id})",
                  markup=False, highlight=False)  # fmt: skip
        return
    shown = previews.render(
        current, database(current), renderer, found.get(journey), step, contact, now_or(now)
    )
    if shown.guard_holds is False:
        err.print(
            "[yellow]note[/yellow]: this step's `if` is false for this contact now; the step would be skipped"
        )
    if shown.variant is not None:
        out.print(f"[bold]Variant:[/bold] {shown.variant}", highlight=False)
    if shown.kind == "email":
        target = html_out or Path(f"preview-{journey}-{step}-{contact}.html")
        target.write_text(shown.html or "", encoding="utf-8")
        out.print(f"[bold]Subject:[/bold] {shown.subject}", highlight=False)
        out.rule("text part")
        out.print(shown.text, markup=False, highlight=False, soft_wrap=True)
        out.rule()
        out.print(f"HTML written to {target}")
    else:
        out.print(shown.text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def explain(
    journey: Annotated[str, typer.Argument(help="journey id")],
    contact: Annotated[str | None, typer.Option("--contact", help="contact id")] = None,
    account: Annotated[str | None, typer.Option("--account", help="account id (account journeys)")] = None,
    now: Annotated[str | None, typer.Option(help="explain at this instant (default now)")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Why a contact or account is (or is not) in a journey: each part with its value now, then one sentence."""
    from engagement.dryrun import explain as explaining

    if output_format not in ("table", "json"):
        raise errors.EngagementError(f"--format: {output_format!r} is not one of table, json")
    current = settings()
    found = catalogs.load([current.path(current.journeys.dir)], current)
    found.raise_problems()
    told = explaining.explain(
        database(current), current, found.get(journey), now_or(now), contact=contact, account=account
    )
    if output_format == "json":
        print(json.dumps(told.as_dict(), indent=2, default=str))
        return
    table = Table(title=f"{told.journey_id} for {told.audience} {told.subject_id} at {told.now.isoformat()}")
    for column in ("part", "rule", "value now", "holds?"):
        table.add_column(column)
    shown = {True: "[green]yes[/green]", False: "[red]no[/red]", None: ""}
    for part in told.parts:
        table.add_row(part.part, escape(part.rule), escape(part.value), shown[part.holds])
    out.print(table)
    out.print(told.sentence, markup=False, highlight=False)


@app.command()
def simulate(
    journey: Annotated[
        str | None, typer.Argument(help="only this journey (a draft is simulated as active)")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="how many days to simulate")] = 14,
    step: Annotated[str, typer.Option(help="time between ticks, e.g. 1h")] = "1h",
    start: Annotated[str | None, typer.Option(help="start instant (default now)")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="write the whole timeline here")] = None,
    show: Annotated[int, typer.Option(help="timeline rows to print")] = 20,
) -> None:
    """Dry run on a copy of today's data: who would get what, when. Sends nothing."""
    from rich.progress import Progress

    from engagement.dryrun import simulate as simulation
    from engagement.engine import load_catalog

    current = settings()
    try:
        interval = parse_duration(step)
    except ValueError as exc:
        raise errors.EngagementError(f"--step: {exc}") from exc
    begin = now_or(start)
    found = simulation.restrict(load_catalog(current), journey)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("simulating", total=days * timedelta(days=1) / interval + 1)
        result = simulation.run(
            current,
            database(current),
            found,
            start=begin,
            days=days,
            step=interval,
            progress=lambda _: bar.advance(task),
        )
    per_day = result.per_day()
    keys = sorted({k for day in per_day.values() for k in day})
    table = Table("day", *keys, "total", title=f"messages per day ({begin:%Y-%m-%d} + {days}d, nothing sent)")
    for day, counts in sorted(per_day.items()):
        table.add_row(day.isoformat(), *(str(counts.get(k, 0)) for k in keys), str(sum(counts.values())))
    out.print(table)
    timeline = Table(
        "when (UTC)", "journey", "step", "variant", "channel", "contact", "email", "status", title="timeline"
    )
    for item in result.timeline[:show]:
        timeline.add_row(
            f"{item.at:%Y-%m-%d %H:%M}",
            item.journey_id,
            item.step_id,
            item.variant or "",
            item.channel,
            item.contact_id or "",
            item.email or "",
            item.status,
        )
    out.print(timeline)
    out.print(
        f"{len(result.timeline)} message(s); enrolled: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.enrolled.items()))
    )
    if csv_out:
        with csv_out.open("w", newline="", encoding="utf-8") as handle:
            writer = spreadsheet.writer(handle)
            writer.writerow(
                ["at", "journey", "step", "variant", "channel", "contact_id", "email", "subject", "status"]
            )
            for item in result.timeline:
                writer.writerow(
                    [
                        item.at.isoformat(),
                        item.journey_id,
                        item.step_id,
                        item.variant,
                        item.channel,
                        item.contact_id,
                        item.email,
                        item.subject,
                        item.status,
                    ]
                )
        out.print(f"timeline written to {csv_out}")


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="working folder for the demo")] = Path(
        "engagement-demo"
    ),
    days: Annotated[int, typer.Option(min=1, max=180, help="simulated days")] = 60,
) -> None:
    """Run the shipped journeys over a generated customer base for 60 simulated days."""
    from engagement.dryrun.demo import run as demo_run

    demo_run.main(directory, days=days, console=out)


report_app = typer.Typer(no_args_is_help=False, invoke_without_command=True)
app.add_typer(report_app, name="report")


@report_app.callback()
def report(
    ctx: typer.Context,
    journey: Annotated[str | None, typer.Option(help="one journey id (default: all)")] = None,
    since: Annotated[
        str | None, typer.Option(help="how far back from now, e.g. 30d, 12w (default 30d)")
    ] = None,
    first: Annotated[str | None, typer.Option("--from", help="first UTC day, YYYY-MM-DD (with --to)")] = None,
    last: Annotated[str | None, typer.Option("--to", help="last UTC day, YYYY-MM-DD (with --from)")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table | csv | json | html")] = "table",
    output: Annotated[Path | None, typer.Option("--out", help="write to this file instead of stdout")] = None,
    now: Annotated[str | None, typer.Option(help="report as of this ISO 8601 instant")] = None,
    digest: Annotated[bool, typer.Option("--digest", help="send the weekly digest email now")] = False,
    hash_password: Annotated[
        bool, typer.Option("--hash-password", help="print a hash for reports.users (asks for the password)")
    ] = False,
    variants: Annotated[
        bool, typer.Option("--variants", help="with --journey: each message variant against the step's first")
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="with --journey: `version`, each journey version")
    ] = None,
) -> None:
    """Funnels, holdout lift, time-to-value, surveys and score trends per journey, in the terminal or as files;
    `report surveys` lists every survey answer, `report retention` reports revenue retention."""
    if ctx.invoked_subcommand is not None:
        return
    from engagement.api import logins
    from engagement.clock import ManualClock
    from engagement.reports import build, html, period, sheets, tables
    from engagement.reports import digest as digests

    if hash_password:
        secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        print(logins.hash_password(secret))
        return
    current = settings()
    db = database(current)
    at = now_or(now)
    if digest:
        sent = digests.send_digest(current, db, ManualClock(at), force=True)
        out.print(f"sent the weekly digest to {sent} recipient(s)")
        return
    _check_format(output_format)
    chosen = period.choose(at, since, first, last)
    if variants or by is not None:
        _split_report(db, current, journey, chosen, variants, by, output_format, output)
        return
    made = build.for_settings(current, db, chosen, at, journey=journey, explicit=bool(since or first or last))
    _emit(made, output_format, output, (tables.print_report, sheets.to_csv, sheets.to_json, html.page))


def _split_report(
    db: Database,
    current: config.Settings,
    journey: str | None,
    chosen: Any,
    variants: bool,
    by: str | None,
    output_format: str,
    output: Path | None,
) -> None:
    """`report --journey J --variants` and `report --journey J --by version`."""
    from engagement.journeys import program
    from engagement.reports import splits

    if journey is None:
        raise errors.EngagementError("--variants and --by need --journey: the journey to split")
    if by not in (None, "version"):
        raise errors.EngagementError(f"--by: {by!r} is not one of: version")
    if output_format == "html":
        raise errors.EngagementError("--format html: the split reports are table, csv or json")
    found = catalogs.load([current.path(current.journeys.dir)], current)
    steps = found.journeys[journey].program if journey in found.journeys else ()
    order = {i.step_id: [v.id for v in i.variants] for i in steps if isinstance(i, program.Varied)}
    with db.begin() as conn:
        if variants:
            groups = splits.variants(conn, journey, chosen, order)
        else:
            groups = splits.versions(conn, journey, chosen)
    title = f"{journey}: by {'variant' if variants else 'version'}, {chosen.label()}"
    if output_format == "table":
        console = Console(file=output.open("w"), width=200) if output else out
        console.print(splits.table(groups, title))
        return
    found_rows = splits.rows(groups)
    if output_format == "json":
        _write(json.dumps(found_rows, indent=2), output)
        return
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    writer = spreadsheet.writer(handle)
    names = list(found_rows[0]) if found_rows else ["step_id", "group"]
    writer.writerow(names)
    for row in found_rows:
        writer.writerow([row[n] for n in names])


def _check_format(output_format: str) -> None:
    if output_format not in ("table", "csv", "json", "html"):
        raise errors.EngagementError(f"--format: {output_format!r} is not one of table, csv, json, html")


def _emit(
    made: Any,
    output_format: str,
    output: Path | None,
    writers: tuple[Any, Any, Any, Any],
    *,
    width: int = 200,
    console: Console = out,
) -> None:
    """A report in `output_format` on `console` (stdout) or in `output`, by its (print, csv, json, html) writers."""
    print_report, to_csv, to_json, page = writers
    if output_format == "table":
        print_report(made, Console(file=output.open("w"), width=width) if output else console)
        return
    if output_format == "csv":
        text = to_csv(made)
    elif output_format == "json":
        text = json.dumps(to_json(made), indent=2) + "\n"
    else:
        text = page(made)
    _write(text, output)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"wrote {output}")


@report_app.command("surveys")
def report_surveys(
    journey: Annotated[str | None, typer.Option(help="one journey id (default: all)")] = None,
    contact: Annotated[str | None, typer.Option(help="one contact's answers")] = None,
    account: Annotated[str | None, typer.Option(help="one account's answers")] = None,
    since: Annotated[str | None, typer.Option(help="answered this far back from now, e.g. 90d")] = None,
    first: Annotated[str | None, typer.Option("--from", help="first UTC day, YYYY-MM-DD (with --to)")] = None,
    last: Annotated[str | None, typer.Option("--to", help="last UTC day, YYYY-MM-DD (with --from)")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    output: Annotated[Path | None, typer.Option("--out", help="write to this file instead of stdout")] = None,
    now: Annotated[str | None, typer.Option(help="as of this ISO 8601 instant (with --since)")] = None,
) -> None:
    """Every survey answer (journey, step, contact, account, kind, score, comment, answered_at), oldest first."""
    from engagement.reports import period, survey_outputs, surveys

    if output_format not in ("table", "csv", "json"):
        raise errors.EngagementError(f"--format: {output_format!r} is not one of table, csv, json")
    chosen = period.choose(now_or(now), since, first, last) if since or first or last else None
    db = database(settings())
    with db.begin() as conn:
        found = surveys.answers(conn, period=chosen, journey=journey, contact=contact, account=account)
    if output_format == "table":
        console = Console(file=output.open("w"), width=200) if output else out
        console.print(survey_outputs.table(found))
        return
    text = survey_outputs.to_csv(found) if output_format == "csv" else survey_outputs.to_json(found)
    _write(text, output)


FirstMonth = Annotated[
    str | None, typer.Option("--from", help="first month, YYYY-MM (default: 11 months before --to)")
]
LastMonth = Annotated[
    str | None, typer.Option("--to", help="last month, YYYY-MM (default: the current month)")
]


@report_app.command("retention")
def report_retention(
    first: FirstMonth = None,
    last: LastMonth = None,
    by: Annotated[
        str | None, typer.Option("--by", help="split every figure by touch | plan | cohort")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table | csv | json | html")] = "table",
    output: Annotated[Path | None, typer.Option("--out", help="write to this file instead of stdout")] = None,
    now: Annotated[str | None, typer.Option(help="report as of this ISO 8601 instant")] = None,
) -> None:
    """Monthly MRR bridge (new, reactivation, expansion, contraction, churn), GRR, NRR, logo churn, renewals."""
    from engagement.reports import months, retention, retention_html, retention_sheets

    _check_format(output_format)
    split = retention.split(by)
    at = now_or(now)
    chosen = months.choose(at, first, last)
    made = retention.build(database(settings()), chosen, at, split)
    writers = (
        retention_sheets.print_report,
        retention_sheets.to_csv,
        retention_sheets.to_json,
        retention_html.page,
    )
    _emit(made, output_format, output, writers, width=250, console=Console(width=max(out.width, 250)))


@report_app.command("health")
def report_health(
    first: FirstMonth = None,
    last: LastMonth = None,
    output_format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    now: Annotated[str | None, typer.Option(help="report as of this ISO 8601 instant")] = None,
) -> None:
    """Is the health score right? Renewal rate and churn share by the band each account had
    `reports.calibration_lead` before."""
    from engagement.health import calibration
    from engagement.reports import months

    if output_format not in ("table", "json"):
        raise errors.EngagementError(f"--format: {output_format!r} is not one of table, json")
    current = settings()
    at = now_or(now)
    made = calibration.build(
        database(current),
        months.choose(at, first, last),
        current.reports.calibration_lead,
        at,
        current.reports.min_sample,
    )
    if output_format == "json":
        _write(json.dumps(calibration.to_json(made), indent=2) + "\n", None)
        return
    lead = made.lead.days
    table = Table(
        f"band {lead}d before", "renewals due", "renewed", "renewal rate", "churned", "share of churn",
        title=f"Health calibration, {made.months.describe()}",
    )  # fmt: skip
    for row in made.rows:
        rate, share = row.renewal_rate, made.churn_share(row)
        table.add_row(
            row.band, str(row.due), str(row.renewed), "" if rate is None else f"{rate:.0%}", str(row.churned),
            "" if share is None else f"{share:.0%}",
        )  # fmt: skip
    out.print(table)
    out.print(made.verdict)


SimStart = Annotated[
    str | None,
    typer.Option(
        "--sim-start",
        hidden=True,
        help="simulated time: the clock reads this ISO instant at --sim-wall (tests and drills)",
    ),
]
SimWall = Annotated[
    str | None, typer.Option("--sim-wall", hidden=True, help="the wall-clock instant of --sim-start")
]
SimSpeed = Annotated[
    float, typer.Option("--sim-speed", hidden=True, help="simulated seconds per wall second")
]
SimFile = Annotated[
    Path | None,
    typer.Option("--sim-clock-file", hidden=True, help="simulated time: the ISO instant this file holds"),
]


def _refuse_weak_secrets(current: config.Settings, host: str, command: str) -> None:
    """Stop before anything binds when the signing secrets are weak on a reachable server; warn on loopback."""
    from engagement.running import secret_policy

    warning = secret_policy.check(current, host, command)
    if warning:
        err.print(warning, style="bold red", markup=False, highlight=False, soft_wrap=True)


def _engine(
    sim_start: str | None, sim_wall: str | None, sim_speed: float, sim_file: Path | None = None
) -> Engine:
    """The configured engine, on the system clock or, for drills, a scaled or a stepped one."""
    import logging

    from engagement.clock import Clock, FileClock, ScaledClock
    from engagement.engine import Engine

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per email is noise; errors still show
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: still running" each second is noise
    current = settings()
    clock: Clock | None = None
    if sim_start is not None:
        clock = ScaledClock(now_or(sim_start), now_or(sim_wall), sim_speed)
    elif sim_file is not None:
        clock = FileClock(sim_file)
    return Engine(current, database=database(current), clock=clock)


@app.command()
def worker(
    sim_start: SimStart = None, sim_wall: SimWall = None, sim_speed: SimSpeed = 1.0, sim_file: SimFile = None
) -> None:
    """Run the scheduled jobs (tick, in-doubt sweep, …) until SIGTERM or Ctrl-C (the current batch finishes).

    On PostgreSQL, run as many workers as you like on one database; on SQLite, one (a second is refused).
    """
    from engagement.running import worker as worker_loop

    current = settings()
    _refuse_weak_secrets(current, current.server.host, "worker")  # it signs the unsubscribe links it sends
    worker_loop.run(_engine(sim_start, sim_wall, sim_speed, sim_file))


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="address to listen on (default server.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default server.port)")] = None,
    sim_start: SimStart = None,
    sim_wall: SimWall = None,
    sim_speed: SimSpeed = 1.0,
    sim_file: SimFile = None,
) -> None:
    """Run the service: the scheduled jobs and the HTTP API in one process, until SIGTERM or Ctrl-C."""
    import uvicorn

    from engagement.api.app import create_app
    from engagement.running import worker as worker_loop

    host = host or settings().server.host
    _refuse_weak_secrets(settings(), host, "run")
    engine = _engine(sim_start, sim_wall, sim_speed, sim_file)
    current = engine.settings
    app_ = create_app(current, database=engine.db, clock=engine.clock)
    server = uvicorn.Server(
        uvicorn.Config(
            app_,
            host=host,
            port=port or current.server.port,
            log_level="warning",
            forwarded_allow_ips=current.server.forwarded_allow_ips,
        )
    )
    worker_loop.run(engine, server=server)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default server.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default server.port)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="server processes sharing the port, 1 to 64 (default server.workers)"
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (Segment-compatible intake, SendGrid webhook, unsubscribe pages, health) with uvicorn."""
    import uvicorn

    from engagement.api.app import create_app

    current = settings()
    host, port = host or current.server.host, port or current.server.port
    _refuse_weak_secrets(current, host, "serve")
    processes = workers or current.server.workers
    if processes == 1:
        uvicorn.run(
            create_app(current, database=database(current)),
            host=host,
            port=port,
            log_level="info",
            forwarded_allow_ips=current.server.forwarded_allow_ips,
        )
        return
    database(current).dispose()  # fail here, once, if the database is not ready
    if State.config_path is not None:  # the worker processes load the same file (see api.app.served_app)
        os.environ[config.CONFIG_ENV] = str(State.config_path.resolve())
    uvicorn.run(
        "engagement.api.app:served_app",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_level="info",
        forwarded_allow_ips=current.server.forwarded_allow_ips,
    )


@app.command()
def deliveries(
    in_doubt: Annotated[
        bool, typer.Option("--in-doubt", help="only deliveries that may or may not have gone out")
    ] = False,
    journey: Annotated[str | None, typer.Option(help="only this journey")] = None,
    limit: Annotated[int, typer.Option(min=1, help="rows to show")] = 50,
) -> None:
    """List deliveries, newest first; --in-doubt lists the ones never re-sent automatically."""
    d = schema.deliveries
    query = d.select().order_by(d.c.updated_at.desc(), d.c.id).limit(limit)
    if in_doubt:
        query = query.where(d.c.status == vocab.DeliveryStatus.IN_DOUBT)
    if journey:
        query = query.where(d.c.journey_id == journey)
    current = settings()
    with database(current).begin() as conn:
        rows = conn.execute(query).mappings().all()
        counts: dict[str, int] = dict(
            conn.execute(select(d.c.status, func.count()).group_by(d.c.status)).all()
        )
    table = Table("id", "journey", "step", "channel", "recipient", "status", "updated", "reason")
    for row in rows:
        updated = row["updated_at"].strftime("%Y-%m-%d %H:%M") if row["updated_at"] else ""
        table.add_row(
            row["id"],
            row["journey_id"],
            row["step_id"],
            row["channel"],
            row["recipient"],
            row["status"],
            updated,
            row["status_reason"] or "",
        )
    out.print(table)
    out.print(", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "no deliveries")


@sup_app.command("list")
def suppressions_list() -> None:
    """List suppressed addresses."""
    current = settings()
    with database(current).begin() as conn:
        rows = (
            conn.execute(schema.suppressions.select().order_by(schema.suppressions.c.created_at))
            .mappings()
            .all()
        )
    table = Table("email", "reason", "source", "since")
    for row in rows:
        table.add_row(row["email"] or "(erased)", row["reason"], row["source"], row["created_at"].isoformat())
    out.print(table)


@sup_app.command("add")
def suppressions_add(
    email: str,
    reason: Annotated[str, typer.Option(help="unsubscribe | bounce | complaint | manual")] = "manual",
) -> None:
    """Suppress an address."""
    if reason not in suppression.REASONS:
        raise errors.EngagementError(f"--reason must be one of {', '.join(suppression.REASONS)}")
    current = settings()
    db = database(current)
    with db.begin() as conn:
        suppression.add(db, conn, email, reason, "cli", SystemClock().now())
    out.print(f"suppressed {email}")


@sup_app.command("remove")
def suppressions_remove(email: str) -> None:
    """Lift a suppression."""
    current = settings()
    db = database(current)
    with db.begin() as conn:
        removed = suppression.remove(db, conn, email, SystemClock().now())
    if not removed:
        raise errors.EngagementError(f"{email} is not suppressed")
    out.print(f"removed {email}")


@sup_app.command("import")
def suppressions_import(
    file: Path, reason: Annotated[str, typer.Option(help="reason for every address")] = "manual"
) -> None:
    """Suppress every address in a file (one per line, or a CSV with an `email` column)."""
    if reason not in suppression.REASONS:
        raise errors.EngagementError(f"--reason must be one of {', '.join(suppression.REASONS)}")
    addresses = _addresses(file)
    current = settings()
    db = database(current)
    now = SystemClock().now()
    with db.begin() as conn:
        for address in addresses:
            suppression.add(db, conn, address, reason, f"import:{file.name}", now)
    out.print(f"suppressed {len(addresses)} address(es)")


def _addresses(file: Path) -> list[str]:
    if not file.is_file():
        raise errors.EngagementError(f"{file}: no such file")
    # bytes that are not UTF-8 read as lone surrogates, which the check below reports by line
    lines = file.read_text(encoding="utf-8-sig", errors="surrogateescape").splitlines()
    header = lines[0].split(",") if lines else []
    column = header.index("email") if "email" in header else None
    body = lines[1:] if column is not None else lines
    found: list[str] = []
    problems: list[errors.Problem] = []
    for number, line in enumerate(body, start=2 if column is not None else 1):
        value = (line.split(",")[column] if column is not None else line).strip()
        if not value:
            continue
        wrong = values.text_problem(value)
        if wrong is not None:
            problems.append(errors.Problem(str(file), number, "email", wrong))
        elif not records.EMAIL.fullmatch(value):
            problems.append(errors.Problem(str(file), number, "email", f"not an email address: {value!r}"))
        found.append(value)
    if problems:
        raise errors.ProblemsError(problems, f"{file}: nothing was suppressed")
    return found


@app.command()
def scores(
    contact: Annotated[str | None, typer.Option("--contact", help="one contact and its top events")] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="one account, its contacts and top events")
    ] = None,
    now: Annotated[str | None, typer.Option(help="score at this ISO 8601 instant")] = None,
    limit: Annotated[int, typer.Option(min=1, help="rows per table")] = 10,
) -> None:
    """Engagement scores and health bands; with --contact/--account, the events that contributed most."""
    from engagement.scores import score_view, scoring

    current = settings()
    db = database(current)
    at = now_or(now)
    scoring.credit(db, current, at)  # count what arrived since the last tick
    if not out.is_terminal:  # piped: keep each row on one line for grep and friends
        out.width = max(out.width, 132)
    with db.begin() as conn:
        if contact is None and account is None:
            _band_tables(conn, current, at, limit)
            return
        if contact is not None:
            _one(conn, current, at, "contact", contact)
        if account is not None:
            _one(conn, current, at, "account", account)
            people = score_view.standings(conn, current, "contact", at, account_id=account, limit=limit)
            _standings_table(people, f"Contacts of {account}, lowest first")
        tops = score_view.contributions(
            conn, current, at, contact_id=contact, account_id=account, limit=limit
        )
    table = Table("when", "contact", "kind", "detail", "weight", "worth now", title="Top contributing events")
    for top in tops:
        table.add_row(
            top.at.strftime("%Y-%m-%d %H:%M"),
            top.contact_id,
            top.kind,
            top.detail,
            f"{top.weight:+g}",
            f"{top.worth:+.2f}",
        )
    out.print(table)


def _one(
    conn: Connection, current: config.Settings, at: datetime, subject_type: str, subject_id: str
) -> None:
    from engagement.scores import score_view

    found = score_view.standings(conn, current, subject_type, at, ids=[subject_id])
    if not found:
        raise errors.EngagementError(f"no {subject_type} {subject_id!r}")
    _standings_table(found, f"{subject_type.title()} score at {at.strftime('%Y-%m-%d %H:%M')} UTC")


def _standings_table(rows: list[Any], title: str) -> None:
    table = Table("id", "score", "band", title=title)
    for row in rows:
        table.add_row(row.subject_id, f"{row.score:.1f}", f"[{BAND_STYLE[row.band]}]{row.band}[/]")
    out.print(table)


BAND_STYLE = {"green": "green", "yellow": "yellow", "red": "red"}


def _band_tables(conn: Connection, current: config.Settings, at: datetime, limit: int) -> None:
    from engagement.scores import score_view

    contacts = score_view.bands(conn, current, "contact", at)
    accounts = score_view.bands(conn, current, "account", at)
    limits = {subject: _limits(current.scoring.bands_of(subject)) for subject in ("contact", "account")}
    table = Table(
        "band",
        "contact score",
        "contacts",
        "account score",
        "accounts",
        title=f"Health bands at {at.strftime('%Y-%m-%d %H:%M')} UTC",
    )
    for band in ("green", "yellow", "red"):
        table.add_row(
            f"[{BAND_STYLE[band]}]{band}[/]",
            limits["contact"][band],
            str(contacts[band]),
            limits["account"][band],
            str(accounts[band]),
        )
    out.print(table)
    _standings_table(
        score_view.standings(conn, current, "account", at, limit=limit), "Lowest-scoring accounts"
    )


def _limits(bands: config.Bands) -> dict[str, str]:
    return {"green": f">= {bands.green:g}", "yellow": f">= {bands.yellow:g}", "red": f"< {bands.yellow:g}"}


@app.command()
def health(
    account: Annotated[
        str | None, typer.Option("--account", help="one account: each measure's value, points, share")
    ] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="recompute every account's health first")
    ] = False,
    now: Annotated[str | None, typer.Option(help="at this ISO 8601 instant")] = None,
) -> None:
    """Scorecard health: accounts and MRR per band and touch tier, MRR at risk, the largest drops by MRR."""
    from engagement.health import cards as scorecards
    from engagement.health import compute, view

    current = settings()
    db = database(current)
    at = now_or(now)
    cards = scorecards.load(current)
    cards.raise_problems()
    if not cards.cards:
        raise errors.EngagementError(
            f"no scorecard files in {current.path(current.health.dir)} (health.dir): health is the engagement "
            "bands (`engagement scores`)"
        )
    if refresh:
        done = compute.refresh(db, current, cards, at)
        out.print(f"refreshed {done.accounts} account(s); {done.changed} changed")
    elif compute.last_refresh(db) is None:
        raise errors.EngagementError("health was never computed: run `engagement health --refresh`")
    with db.begin() as conn:
        if account is not None:
            found = view.account_health(conn, cards, account)
            known = conn.execute(select(schema.accounts.c.id).where(schema.accounts.c.id == account)).first()
            if found is None and known is None:
                raise errors.NotFoundError(f"--account: no account {account!r}")
            if found is None:
                raise errors.EngagementError(
                    f"no health for account {account!r} (run `engagement health --refresh`)"
                )
            _account_health_table(found)
            return
        _health_tables(view.bands(conn, at), view.drops(conn, at))


HEALTH_STYLE = {"green": "green", "yellow": "yellow", "red": "red", "unknown": "dim"}


def _health_tables(rows: list[Any], drops: list[Any]) -> None:
    from engagement.health import view

    cells = {(r.band, r.touch): r for r in rows}
    table = Table(
        "band",
        *(f"{t} accounts" for t in view.TIERS),
        *(f"{t} MRR" for t in view.TIERS),
        title="Health by touch tier",
    )
    for band in view.BANDS:
        found = [cells.get((band, t)) for t in view.TIERS]
        table.add_row(
            f"[{HEALTH_STYLE[band]}]{band}[/]",
            *(str(r.accounts if r else 0) for r in found),
            *(f"{r.mrr if r else 0:,.0f}" for r in found),
        )
    out.print(table)
    at_risk = sum(r.mrr for r in rows if r.band == "red")
    out.print(f"MRR at risk (red): {at_risk:,.0f}")
    if not drops:
        out.print(
            "Largest drops in 14 days: none (no account's score is below its daily snapshot of 14 days ago;"
            " a database younger than 14 days has no such snapshot yet)"
        )
        return
    drop_table = Table(
        "account",
        "name",
        "touch",
        "14 days ago",
        "now",
        "change",
        "MRR",
        title="Largest drops in 14 days, by MRR",
    )
    for d in drops:
        drop_table.add_row(
            d.account_id,
            d.name,
            d.touch,
            f"{d.before:.1f}",
            f"{d.after:.1f}",
            f"{d.change:+.1f}",
            f"{d.mrr:,.0f}",
        )
    out.print(drop_table)


def _account_health_table(found: Any) -> None:
    score = "n/a" if found.score is None else f"{found.score:.1f}"
    title = (
        f"{found.account_id}: {found.scorecard_name or 'no scorecard applies'}, score {score}, {found.band}"
    )
    table = Table("measure", "metric", "value", "points", "weight", "share of score", title=title)
    for m in found.measures:
        table.add_row(
            m.id,
            m.metric,
            "none" if m.value is None else f"{m.value:.3g}",
            "skipped" if m.points is None else f"{m.points:.1f}",
            f"{m.weight:g}",
            "" if m.share is None else f"{m.share:.1f}",
        )
    out.print(table)


@contacts_app.command("erase")
def contacts_erase(
    contact_id: Annotated[str, typer.Argument(help="the contact to erase")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Erase a contact's personal data everywhere; a hashed suppression keeps the address unsubscribed."""
    from engagement.store import erasure

    if not yes:
        typer.confirm(
            f"Erase every piece of personal data of contact {contact_id}? This cannot be undone", abort=True
        )
    current = settings()
    outbox = current.path(current.email.outbox.dir) if current.email.provider == "outbox" else None
    done = erasure.erase(database(current), contact_id, SystemClock().now(), outbox=outbox)
    out.print(
        f"erased contact {contact_id}: {done.events} events, {done.deliveries} deliveries, {done.nudges} nudges, "
        f"{done.responses} responses scrubbed; {done.enrollments_ended} enrollments ended; "
        f"{done.outbox_files} outbox files deleted"
        + ("; the address stays suppressed (hash only)" if done.suppressed else "")
    )
    if not done.log_truncated:
        err.print(
            "warning: other connections kept SQLite's write-ahead log busy, so earlier copies of the erased "
            "data stay in engagement.db-wal until its next checkpoint; run the command again when idle",
            markup=False,
            highlight=False,
        )


def main() -> None:
    """Entry point: a user's error ends in one line naming the problem and exit 1; a bug keeps its traceback."""
    try:
        app()
    except errors.ProblemsError as exc:
        _fail(str(exc))
    except errors.EngagementError as exc:
        _fail(f"error: {exc}")
    except OperationalError as exc:  # the database cannot be reached, opened or written: not the code's fault
        _fail(f"error: database {_redacted(_current_url())}: {_first_line(exc.orig)}")
    except OSError as exc:  # a file or folder named on the command line cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"error: {where}{exc.strerror or exc}")


def _fail(message: str) -> None:
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    sys.exit(1)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _current_url() -> str:
    """The configured database URL, or "" when the config itself cannot be read."""
    try:
        return settings().database_url
    except errors.EngagementError:
        return ""


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
