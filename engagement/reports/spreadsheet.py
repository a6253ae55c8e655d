"""CSV for spreadsheets: a text cell a spreadsheet could run as a formula is written so it shows as text.

The rule, for every CSV the package writes: a string that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a leading apostrophe (`'=cmd|…` shows as `=cmd|…` and is never evaluated). Only
strings: numbers the package writes as numbers (a rate of -3.5, a count) stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value`, with an apostrophe in front when it is a string a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class Writer:
    """`csv.writer` that neutralises every cell it writes."""

    def __init__(self, handle: IO[str], **options: Any) -> None:
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row."""
        self._writer.writerow([cell(value) for value in row])


def writer(handle: IO[str], **options: Any) -> Writer:
    """A CSV writer for `handle` (the `csv.writer` options apply) whose cells are never formulas."""
    return Writer(handle, **options)
