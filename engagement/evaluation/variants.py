"""Which variant of a message step a recipient gets: fixed by a hash of journey, step and recipient.

The bucket is holdout.py's (the first 32 bits of md5, which SQLite computes through Python and PostgreSQL
with md5()), taken modulo the variants' total weight; each variant owns a run of that many slots, in file
order. `chosen_sql` is the twin advance.py writes on each delivery; `pick` is the same in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, case, literal
from sqlalchemy.sql import ColumnElement

from engagement.evaluation import holdout
from engagement.journeys import program
from engagement.journeys.catalog import Journey


def slot(journey_id: str, step_id: str, recipient: str, total: int) -> int:
    """The recipient's slot at this step, 0 .. total - 1."""
    return holdout.bucket(f"{journey_id}:{step_id}:{recipient}") % total


def pick(
    journey_id: str, step_id: str, recipient: str, variants: Sequence[program.Variant[Any]]
) -> str | None:
    """The id of the variant this recipient gets (None when the step has no variants)."""
    if not variants:
        return None
    left = slot(journey_id, step_id, recipient, sum(v.weight for v in variants))
    for variant in variants:
        if left < variant.weight:
            return variant.id
        left -= variant.weight
    raise AssertionError("a slot lies below the total weight")  # pragma: no cover


def variant_for(journey: Journey, step_id: str, recipient: str) -> str | None:
    """Which variant recipient `recipient` (a contact id) gets at this journey's step (None: no variants)."""
    instr = journey.step(step_id)
    if not isinstance(instr, program.Email | program.InApp | program.Survey):
        return None
    return pick(journey.id, step_id, recipient, instr.variants)


def chosen_sql(
    journey_id: str, instr: program.Message, recipient: ColumnElement[str]
) -> ColumnElement[str | None]:
    """SQL twin of `pick` over a column of recipients."""
    variants = instr.variants if isinstance(instr, program.Email | program.InApp | program.Survey) else ()
    if not variants:
        return literal(None, String())
    total = sum(v.weight for v in variants)
    at = holdout.Bucket(literal(f"{journey_id}:{instr.step_id}:") + recipient) % total
    edges, upto = [], 0
    for variant in variants[:-1]:
        upto += variant.weight
        edges.append((at < upto, literal(variant.id)))
    return case(*edges, else_=literal(variants[-1].id))
