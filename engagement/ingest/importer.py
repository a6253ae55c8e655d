"""Import accounts, contacts, events or revenue rows from CSV or JSONL: all rows or none."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from engagement import errors, values, vocab
from engagement.config import Settings
from engagement.errors import Problem
from engagement.ingest import accounts, revenue
from engagement.ingest import upserts as ingest
from engagement.ingest.records import AccountIn, ContactIn, EventIn, Record, RevenueIn
from engagement.store import schema
from engagement.store.database import Database

KINDS: dict[str, type[Record]] = {
    "accounts": AccountIn,
    "contacts": ContactIn,
    "events": EventIn,
    "revenue": RevenueIn,
}
CHUNK = 2000
STATISTICS_AFTER = 10_000  # rows an import writes beyond which it refreshes the planner's statistics
GROWN = {  # the tables an import of each kind grows (each write also logs a subject_change row)
    "accounts": ["account", "subject_change"],
    "contacts": ["contact", "subject_change"],
    "events": ["event", "milestone", "account_milestone", "subject_change"],
    "revenue": ["revenue"],
}
MAX_SHOWN = 100


@dataclass
class ImportResult:
    """How an import went."""

    kind: str
    imported: int = 0
    skipped: int = 0
    duplicates: int = 0  # events whose id the database already had
    problems: list[Problem] = field(default_factory=list)
    repeats: list[Problem] = field(default_factory=list)  # rows whose id an earlier row of the file had
    lines: dict[str, int] = field(default_factory=dict)  # id → the line it first came on


def rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    """(line number, raw row or the Problem that stopped it) for a CSV or JSONL file.

    Bytes that are not UTF-8 are read as lone surrogates (`surrogateescape`), so the row check names the
    line and field they are in instead of the whole file failing to decode.
    """
    fields = set(KINDS[kind].model_fields)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8-sig", errors="surrogateescape") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = values.loads(line)
                except json.JSONDecodeError as exc:
                    yield (
                        number,
                        Problem(str(path), number, "", f"invalid JSON: {exc.msg} (column {exc.colno})"),
                    )
                    continue
                except ValueError as exc:  # nested too deeply for the parser, a number of thousands of digits
                    yield number, Problem(str(path), number, "", f"invalid JSON: {exc}")
                    continue
                if not isinstance(value, dict):
                    yield number, Problem(str(path), number, "", "each line must be a JSON object")
                    continue
                yield number, value
        return
    if path.suffix.lower() != ".csv":
        raise errors.EngagementError(f"{path}: unknown file type; use .csv or .jsonl")
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames
        except csv.Error as exc:
            yield 1, Problem(str(path), 1, "", f"not a CSV header row: {exc}")
            return
        unknown = [c for c in header or [] if c not in fields]
        if not header:
            yield 1, Problem(str(path), 1, "", "empty file: the first line must be a header row")
            return
        if unknown:
            allowed = ", ".join(KINDS[kind].model_fields)
            yield 1, Problem(str(path), 1, unknown[0], f"unknown column for {kind} (allowed: {allowed})")
            return
        first = reader.line_num
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # reading cannot go on: the rest of the file is in doubt
                yield first + 1, Problem(str(path), first + 1, "", _csv_error(exc))
                return
            if None in raw:
                yield (
                    reader.line_num,
                    Problem(str(path), reader.line_num, "", "more cells than header columns"),
                )
            elif None in raw.values():
                missing = [k for k, v in raw.items() if v is None]
                given = len(header) - len(missing)
                message = f"fewer cells than header columns ({given} of {len(header)})"
                yield first + 1, Problem(str(path), first + 1, missing[0], message)
            else:
                yield first + 1, {k: v for k, v in raw.items() if v != ""}
            first = reader.line_num


def _csv_error(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return f"a cell is longer than the CSV limit of {limit:,} characters (or a quote is never closed)"
    return f"not valid CSV: {exc}"


def import_file(
    db: Database, settings: Settings, kind: str, path: Path, now: datetime, *, skip_invalid: bool = False
) -> ImportResult:
    """Validate and write a whole file in one transaction; any bad row aborts it unless skipped."""
    if kind not in KINDS:
        raise errors.EngagementError(
            f"unknown import kind {kind!r}; use accounts, contacts, events or revenue"
        )
    if not path.is_file():
        raise errors.EngagementError(f"{path}: no such file")
    result = ImportResult(kind)
    model = KINDS[kind]
    with db.begin() as conn:
        staged = revenue.Staged(db, conn) if kind == "revenue" else None
        pending: list[tuple[int, Record]] = []
        for number, raw in rows(path, kind):
            if isinstance(raw, Problem):
                result.problems.append(raw)
                continue
            hostile = values.problem(raw)
            if hostile is not None:
                loc, message = hostile
                result.problems.append(Problem(str(path), number, values.place(loc), message))
                continue
            try:
                pending.append((number, model.model_validate(raw)))
            except ValidationError as exc:
                for err in exc.errors():
                    name = ".".join(str(p) for p in err["loc"]) or ""
                    message = (
                        "required field is missing"
                        if err["type"] == "missing"
                        else err["msg"].removeprefix("Value error, ")
                    )
                    result.problems.append(Problem(str(path), number, name, message))
            if len(pending) >= CHUNK:
                _write(db, conn, settings, kind, path, pending, now, result, staged)
                pending = []
        _write(db, conn, settings, kind, path, pending, now, result, staged)
        if staged is not None:
            _unknown_accounts(path, staged, result)
        if result.problems and not skip_invalid:
            shown = result.problems[:MAX_SHOWN]
            more = len(result.problems) - len(shown)
            bad_rows = len({p.line for p in result.problems})  # a row with two bad fields is one invalid row
            problems = "" if bad_rows == len(result.problems) else f" ({len(result.problems)} problems)"
            summary = (
                f"{path}: {bad_rows} invalid row(s){problems}; nothing was imported "
                "(use --skip-invalid to import the rest)"
            )
            if more:
                shown = [*shown, Problem(str(path), None, "", f"… and {more} more")]
            raise errors.ImportFileError(shown, summary)
        if staged is not None:
            staged.write(now, settings.touch)
        result.skipped = len({p.line for p in result.problems})
    if result.imported >= STATISTICS_AFTER:  # the next tick plans with the grown tables' statistics
        db.refresh_statistics(GROWN[kind])
    return result


def _write(
    db: Database,
    conn: Any,
    settings: Settings,
    kind: str,
    path: Path,
    pending: list[tuple[int, Record]],
    now: datetime,
    result: ImportResult,
    staged: revenue.Staged | None = None,
) -> None:
    if not pending:
        return
    if staged is not None:  # revenue rows: their accounts are checked once the whole file is held
        staged.add(cast(list[tuple[int, RevenueIn]], pending))
        result.imported += len(pending)
        return
    good = _check_references(conn, kind, path, pending, result)
    fresh = _note_repeats(kind, path, good, result)
    records = [r for _, r in good]
    if kind == "accounts":
        given_accounts = cast(list[AccountIn], records)
        accounts.write(db, conn, given_accounts, settings.touch, now, vocab.RevenueSource.ACCOUNT)
        result.imported += fresh
    elif kind == "contacts":
        ingest.upsert_contacts(db, conn, cast(list[ContactIn], records), now)
        result.imported += fresh
    else:
        events = cast(list[tuple[int, EventIn]], good)
        first = [r for number, r in events if r.id is None or result.lines[r.id] == number]
        inserted = ingest.insert_events(db, conn, first, now, source="import")
        result.imported += inserted
        result.duplicates += len(first) - inserted


def _unknown_accounts(path: Path, staged: revenue.Staged, result: ImportResult) -> None:
    """A problem for each held revenue row whose account does not exist; all problems in line order."""
    unknown = staged.unknown_accounts()
    result.problems.extend(
        Problem(str(path), line, "account_id", f"unknown account {ref!r} (import accounts first)")
        for line, ref in unknown
    )
    result.problems.sort(key=lambda p: p.line or 0)
    result.imported -= len(unknown)


def _note_repeats(kind: str, path: Path, good: list[tuple[int, Record]], result: ImportResult) -> int:
    """Note each row whose id came earlier in the file; return how many ids are new to it.

    Account and contact rows for one id apply in order (the last one wins); an event repeated by id is kept once.
    """
    fresh = 0
    outcome = "the first one is kept" if kind == "events" else "its rows apply in order"
    for number, record in good:
        key = getattr(record, "id", None)
        if key is None:
            fresh += 1
            continue
        earlier = result.lines.setdefault(key, number)
        if earlier == number:
            fresh += 1
        else:
            result.repeats.append(
                Problem(str(path), number, "id", f"{key!r} repeats line {earlier}; {outcome}")
            )
    return fresh


def _check_references(
    conn: Any, kind: str, path: Path, pending: list[tuple[int, Record]], result: ImportResult
) -> list[tuple[int, Record]]:
    if kind == "accounts":
        return pending
    column, attr, what = (
        (schema.contacts.c.id, "contact_id", "contact")
        if kind == "events"
        else (schema.accounts.c.id, "account_id", "account")
    )
    refs = [getattr(r, attr) for _, r in pending]
    known = ingest.existing(conn, column, refs)
    good: list[tuple[int, Record]] = []
    for (number, record), ref in zip(pending, refs, strict=True):
        if ref in known:
            good.append((number, record))
        else:
            result.problems.append(
                Problem(str(path), number, attr, f"unknown {what} {ref!r} (import {what}s first)")
            )
    return good
