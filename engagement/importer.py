"""Import accounts, contacts or events from CSV or JSONL: all rows or none."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engagement import errors, ingest
from engagement.config import Settings
from engagement.errors import Problem
from engagement.records import AccountIn, ContactIn, EventIn, Record
from engagement.store import schema
from engagement.store.database import Database

KINDS: dict[str, type[Record]] = {"accounts": AccountIn, "contacts": ContactIn, "events": EventIn}
CHUNK = 2000
STATISTICS_AFTER = 10_000  # rows an import writes beyond which it refreshes the planner's statistics
GROWN = {  # the tables an import of each kind grows (each write also logs a subject_change row)
    "accounts": ["account", "subject_change"],
    "contacts": ["contact", "subject_change"],
    "events": ["event", "milestone", "account_milestone", "subject_change"],
}
MAX_SHOWN = 100


@dataclass
class ImportResult:
    """How an import went."""

    kind: str
    imported: int = 0
    skipped: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)


def rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    """(line number, raw row or the Problem that stopped it) for a CSV or JSONL file."""
    fields = set(KINDS[kind].model_fields)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield (
                        number,
                        Problem(str(path), number, "", f"invalid JSON: {exc.msg} (column {exc.colno})"),
                    )
                    continue
                if not isinstance(value, dict):
                    yield number, Problem(str(path), number, "", "each line must be a JSON object")
                    continue
                yield number, value
        return
    if path.suffix.lower() != ".csv":
        raise errors.EngagementError(f"{path}: unknown file type; use .csv or .jsonl")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        unknown = [c for c in reader.fieldnames or [] if c not in fields]
        if not reader.fieldnames:
            yield 1, Problem(str(path), 1, "", "empty file: the first line must be a header row")
            return
        if unknown:
            allowed = ", ".join(KINDS[kind].model_fields)
            yield 1, Problem(str(path), 1, unknown[0], f"unknown column for {kind} (allowed: {allowed})")
            return
        first = reader.line_num
        for raw in reader:
            if None in raw:
                yield (
                    reader.line_num,
                    Problem(str(path), reader.line_num, "", "more cells than header columns"),
                )
            else:
                yield first + 1, {k: v for k, v in raw.items() if v not in ("", None)}
            first = reader.line_num


def import_file(
    db: Database, settings: Settings, kind: str, path: Path, now: datetime, *, skip_invalid: bool = False
) -> ImportResult:
    """Validate and write a whole file in one transaction; any bad row aborts it unless skipped."""
    if kind not in KINDS:
        raise errors.EngagementError(f"unknown import kind {kind!r}; use accounts, contacts or events")
    if not path.is_file():
        raise errors.EngagementError(f"{path}: no such file")
    result = ImportResult(kind)
    model = KINDS[kind]
    with db.begin() as conn:
        pending: list[tuple[int, Record]] = []
        for number, raw in rows(path, kind):
            if isinstance(raw, Problem):
                result.problems.append(raw)
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
                _write(db, conn, settings, kind, path, pending, now, result)
                pending = []
        _write(db, conn, settings, kind, path, pending, now, result)
        if result.problems and not skip_invalid:
            shown = result.problems[:MAX_SHOWN]
            more = len(result.problems) - len(shown)
            summary = (
                f"{path}: {len(result.problems)} invalid row(s); nothing was imported "
                "(use --skip-invalid to import the rest)"
            )
            if more:
                shown = [*shown, Problem(str(path), None, "", f"… and {more} more")]
            raise errors.ImportFileError(shown, summary)
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
) -> None:
    if not pending:
        return
    good = _check_references(conn, kind, path, pending, result)
    if kind == "accounts":
        ingest.upsert_accounts(db, conn, good, settings.touch, now)  # type: ignore[arg-type]
    elif kind == "contacts":
        ingest.upsert_contacts(db, conn, good, now)  # type: ignore[arg-type]
    else:
        result.duplicates += len(good) - ingest.insert_events(db, conn, good, now, source="import")  # type: ignore[arg-type]
    result.imported += len(good)


def _check_references(
    conn: Any, kind: str, path: Path, pending: list[tuple[int, Record]], result: ImportResult
) -> list[Record]:
    if kind == "accounts":
        return [r for _, r in pending]
    column, attr, what = (
        (schema.accounts.c.id, "account_id", "account")
        if kind == "contacts"
        else (schema.contacts.c.id, "contact_id", "contact")
    )
    known = ingest.existing(conn, column, [getattr(r, attr) for _, r in pending])
    good: list[Record] = []
    for number, record in pending:
        ref = getattr(record, attr)
        if ref in known:
            good.append(record)
        else:
            result.problems.append(
                Problem(str(path), number, attr, f"unknown {what} {ref!r} (import {what}s first)")
            )
    return good
