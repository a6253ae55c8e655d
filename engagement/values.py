"""What every door accepts: the id rule, JSON without NaN or Infinity, text without NUL or lone surrogates.

Defined once; the intake models, the importer, the SendGrid webhook and the routes all use it.

- **Ids** (contacts, accounts, events, groups): 1 to 200 characters, all printable (letters, marks,
  digits, punctuation, symbols and the space; no control or format characters, no lone surrogates),
  no `/` (an id must fit in one URL path segment), and not `.` or `..`.
- **JSON**: numbers are finite (no `NaN`, `Infinity`) and integers fit in 64 bits; text holds no NUL and
  no lone surrogate (in keys too); nesting is at most `MAX_DEPTH` levels.
- **Instants**: from `EARLIEST` up to (not including) `LATEST`, so date arithmetic never overflows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

MAX_ID = 200
MAX_DEPTH = 32
MAX_INT = 2**63 - 1
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
Loc = list[str | int]


def id_problem(value: str) -> str | None:
    """Why `value` is not an id by the rule above, or None."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID:
        return f"an id has at most {MAX_ID} characters"
    if "/" in value:
        return "an id must not contain '/' (it has to fit in one URL path segment)"
    if value in (".", ".."):
        return "an id must not be '.' or '..'"
    if not value.isprintable():
        bad = next(ch for ch in value if not ch.isprintable())
        return f"an id must be printable characters, not U+{ord(bad):04X}"
    return None


def check_id(value: str) -> str:
    """`value` when it is an id by the rule; ValueError saying why not."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID), AfterValidator(check_id)]


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (a NUL, a lone surrogate or a byte that was not UTF-8), or None."""
    found = BAD_TEXT.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "text must not contain a NUL character"
    if "\udc80" <= char <= "\udcff":  # how an undecodable byte reads with errors="surrogateescape"
        return f"not UTF-8 text: byte 0x{ord(char) - 0xDC00:02X} (or a lone surrogate \\u{ord(char):04x})"
    return f"text must not contain a lone surrogate (\\u{ord(char):04x}); send UTF-8 text"


def problem(value: Any, loc: Sequence[str | int] = ()) -> tuple[Loc, str] | None:
    """The first value in a decoded JSON document that no door accepts, with its location, or None."""
    if type(value) is dict and all(type(k) is str and type(v) is str for k, v in value.items()):  # a CSV row
        text = "".join(value) + "".join(value.values())
        if text.isascii() and "\x00" not in text:  # ASCII has no surrogates; nothing else can be wrong
            return None
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, tuple(loc))]
    base = len(loc)
    while stack:
        item, at = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() or "\x00" in item:
                wrong = text_problem(item)
                if wrong:
                    return list(at), wrong
        elif kind is float:
            if not math.isfinite(item):
                return list(at), "NaN and Infinity are not allowed (JSON has no such numbers)"
        elif kind is int:
            if not -MAX_INT - 1 <= item <= MAX_INT:
                return list(at), "a whole number must fit in 64 bits"
        elif kind is dict or kind is list:
            if len(at) - base >= MAX_DEPTH:
                return list(at), f"JSON nested deeper than {MAX_DEPTH} levels is not allowed"
            if kind is dict:
                for key, inner in reversed(item.items()):
                    wrong = text_problem(key) if isinstance(key, str) else None
                    if wrong:
                        return [*at, key], f"a key: {wrong}"
                    stack.append((inner, (*at, key)))
            else:
                stack.extend((inner, (*at, i)) for i, inner in reversed(list(enumerate(item))))
    return None


def loads(text: str | bytes) -> Any:
    """`json.loads`; nesting too deep for its parser is a ValueError like any other bad JSON."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels is not allowed") from exc


def shown(text: str) -> str:
    """`text` safe to print or send: a lone surrogate (or an undecodable byte) as its backslash escape."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def place(loc: Sequence[str | int]) -> str:
    """A location as `traits.a[0].b`, printable whatever its keys hold."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{shown(part)}" if text else shown(part))
    return text


def checked(value: Any) -> Any:
    """`value` when `problem` finds nothing in it; ValueError naming the place otherwise."""
    found = problem(value)
    if found is not None:
        loc, message = found
        where = place(loc)
        raise ValueError(f"{where}: {message}" if where else message)
    return value


def instant(value: datetime) -> datetime:
    """`value` in UTC (naive means UTC) when it lies in [EARLIEST, LATEST); ValueError otherwise."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{value.isoformat()} is out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError(
            f"{utc.isoformat()} is out of range: use a time from {EARLIEST.year} up to {LATEST.year}"
        )
    return utc


def day(value: date) -> date:
    """`value` when it lies in the years instants may have; ValueError otherwise."""
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(
            f"{value.isoformat()} is out of range: use a date from {EARLIEST.year} up to {LATEST.year}"
        )
    return value
