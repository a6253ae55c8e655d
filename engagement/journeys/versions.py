"""A journey version's shape as plain JSON: who may enter, and each step as the file wrote it.

Kept with every version the engine ran (schema.JourneyVersion), so `engagement plan` can say which steps
a new version of the file adds, removes or changes without reading the old file back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from engagement.journeys import program
from engagement.journeys.catalog import Journey
from engagement.journeys.program import Instr

SHAPE = 1  # the shape format's version
ENTRY = ("status", "audience", "trigger", "filter", "re_entry", "lookback", "goal", "exit", "recipients")
ENTERING = ("status", "trigger", "filter", "re_entry", "lookback", "goal", "exit")  # decide who enters now
ENDING = ("goal", "exit")  # end enrollments in flight when they change
CONDITIONS = ("if", "wait_until", "condition", "filter", "goal", "exit", "recipients")  # compared whole


def shape(journey: Journey) -> dict[str, Any]:
    """The entry rules and the steps (a list in file order: JSONB keeps no key order) of this version."""
    entry = journey.spec.model_dump(mode="json", by_alias=True, include=set(ENTRY))
    return {
        "v": SHAPE,
        "entry": entry,
        "steps": [{"id": i.step_id, **step(journey, i)} for i in journey.program if i.kind != "jump"],
    }


def step(journey: Journey, instr: Instr) -> dict[str, Any]:
    """One step as the file wrote it: its kind and its keys (a branch without its arms)."""
    node: Any = journey.spec
    for key in instr.loc:
        node = node[key] if isinstance(key, int) else getattr(node, _ATTRS.get(key, key))
    assert isinstance(node, BaseModel)
    written = node.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"id"})
    if isinstance(instr, program.Branch):
        written["branch"] = {"if": written["branch"]["if"]}
    return {"kind": instr.kind, **written}


def steps(shape: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A shape's steps by id, in file order, each without its id."""
    return {s["id"]: {k: v for k, v in s.items() if k != "id"} for s in shape.get("steps", [])}


_ATTRS = {"else": "else_"}


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys of a step (`email.subject`, `wait`, `if`) whose value differs between two shapes of it."""
    found: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and key not in CONDITIONS:
            found += [f"{key}.{sub}" for sub in changed_fields(a, b)]
        else:
            found.append(key)
    return found
