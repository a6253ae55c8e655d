"""A journey's steps flattened into a list of instructions with explicit jumps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engagement.conditions import ast

MESSAGE_KINDS = ("email", "in_app", "notify")


@dataclass(frozen=True)
class Instr:
    """One instruction: a message, a wait, a wait-until, a branch or a jump."""

    index: int
    step_id: str
    kind: str  # email | in_app | notify | wait | wait_until | branch | jump
    loc: tuple[str | int, ...]
    spec: Any = None  # EmailSpec / InAppSpec / NotifySpec
    guard: ast.Condition | None = None  # `if:` on the step
    condition: ast.Condition | None = None  # wait_until / branch condition
    duration: timedelta | None = None  # wait, or wait_until timeout
    next: int = -1
    alt: int = -1  # branch: where `else` starts

    @property
    def is_message(self) -> bool:
        return self.kind in MESSAGE_KINDS


@dataclass
class _Draft:
    step_id: str
    kind: str
    loc: tuple[str | int, ...]
    spec: Any = None
    guard: ast.Condition | None = None
    condition: ast.Condition | None = None
    duration: timedelta | None = None
    next: int = -1
    alt: int = -1


def build(steps: list[Any], conditions: dict[tuple[str | int, ...], ast.Condition]) -> tuple[Instr, ...]:
    """Flatten parsed steps; `conditions` maps each condition's location to its AST."""
    out: list[_Draft] = []
    _emit(steps, ("steps",), out, conditions)
    end = len(out)
    return tuple(
        Instr(
            i,
            d.step_id,
            d.kind,
            d.loc,
            d.spec,
            d.guard,
            d.condition,
            d.duration,
            end if d.next == -1 else d.next,
            d.alt,
        )
        for i, d in enumerate(out)
    )


def _auto_id(kind: str, loc: tuple[str | int, ...]) -> str:
    return kind + "@" + ".".join(str(p) for p in loc[1:])


def _emit(
    steps: list[Any], loc: tuple[str | int, ...], out: list[_Draft], conds: dict[Any, ast.Condition]
) -> None:
    for i, step in enumerate(steps):
        here = loc + (i,)
        kind = next(
            k for k in ("email", "in_app", "notify", "wait_until", "wait", "branch") if hasattr(step, k)
        )
        draft = _Draft(step.id or _auto_id(kind, here), kind, here, guard=conds.get(here + ("if",)))
        out.append(draft)
        if kind in ("email", "in_app", "notify"):
            draft.spec = getattr(step, kind)
        elif kind == "wait":
            draft.duration = step.wait
        elif kind == "wait_until":
            draft.condition = conds.get(here + ("wait_until",))
            draft.duration = step.timeout
        else:
            draft.condition = conds.get(here + ("branch", "if"))
            _emit(step.branch.then, here + ("branch", "then"), out, conds)
            jump = _Draft(_auto_id("jump", here), "jump", here)
            out.append(jump)
            draft.alt = len(out)
            _emit(step.branch.else_, here + ("branch", "else"), out, conds)
            jump.next = len(out)
    # sequential fall-through: each non-jump instruction continues with the one after it
    for idx, draft in enumerate(out):
        if draft.kind != "jump" and draft.next == -1:
            draft.next = idx + 1
