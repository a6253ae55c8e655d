"""`engagement report surveys`: every answer as a Rich table, a CSV (cells neutralised) or JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from rich.table import Table

from engagement.reports import spreadsheet
from engagement.reports.surveys import ANSWER_COLUMNS, Answer
from engagement.reports.tables import LISTED


def _cells(answer: Answer) -> tuple[str | int, ...]:
    return (
        answer.journey,
        answer.step,
        answer.contact,
        answer.account,
        answer.kind,
        answer.score,
        answer.comment,
        answer.answered_at.isoformat(),
    )


def table(answers: Sequence[Answer]) -> Table:
    """The first LISTED answers, saying how many more the files hold."""
    shown = answers[:LISTED]
    found = Table(*ANSWER_COLUMNS, title=f"Survey answers ({len(answers)})", title_justify="left")
    if len(shown) < len(answers):
        found.caption = f"the first {len(shown)} of {len(answers)}; --format csv or json lists them all"
    for answer in shown:
        found.add_row(*(str(cell) for cell in _cells(answer)))
    return found


def to_csv(answers: Sequence[Answer]) -> str:
    """One row per answer, with its comment; a cell a spreadsheet would run as a formula shows as text."""
    out = io.StringIO()
    writer = spreadsheet.writer(out, lineterminator="\n")
    writer.writerow(ANSWER_COLUMNS)
    for answer in answers:
        writer.writerow(_cells(answer))
    return out.getvalue()


def to_json(answers: Sequence[Answer]) -> str:
    """`{"answers": [...]}`, one object per answer."""
    rows = [dict(zip(ANSWER_COLUMNS, _cells(answer), strict=True)) for answer in answers]
    return json.dumps({"answers": rows}, indent=2) + "\n"
