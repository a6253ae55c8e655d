"""A journey's steps flattened into a list of instructions with explicit jumps.

Every instruction has an id that survives edits elsewhere in the file. A step's own `id` when it has
one; else one derived from the named step before it in its list (`welcome>wait`: the wait after
`welcome`; `^>wait` at the start of the list; `welcome>wait#2` for the second unnamed wait there),
inside a branch prefixed by the branch's id and arm (`check:then:^>wait`). Inserting, removing or
reordering steps leaves these ids alone unless the named step they hang on goes; for that case each
unnamed instruction also carries `rescue`, the same step seen from the named step after it, so a
journey change can still recognise it (see engagement/evaluation/moves.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engagement.conditions import ast

MESSAGE_KINDS = ("email", "in_app", "notify", "survey")
KINDS = ("email", "in_app", "notify", "survey", "wait_until", "wait", "branch")
MAX_ID = 100  # the step_id columns' length


@dataclass(frozen=True)
class Instr:
    """One instruction: a message, a wait, a wait-until, a branch or a jump."""

    index: int
    step_id: str
    kind: str  # email | in_app | notify | survey | wait | wait_until | branch | jump
    loc: tuple[str | int, ...]
    spec: Any = None  # EmailSpec / InAppSpec / NotifySpec / SurveySpec
    guard: ast.Condition | None = None  # `if:` on the step
    condition: ast.Condition | None = None  # wait_until / branch condition
    duration: timedelta | None = None  # wait, or wait_until timeout
    next: int = -1
    alt: int = -1  # branch: where `else` starts
    rescue: str | None = None  # unnamed steps: the same step located from the named step after it

    @property
    def is_message(self) -> bool:
        return self.kind in MESSAGE_KINDS

    @property
    def channel(self) -> str:
        """Where a message goes: its kind, or a survey's own channel (email | in_app)."""
        return str(self.spec.channel) if self.kind == "survey" else self.kind


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
    rescue: str | None = None


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
            d.rescue,
        )
        for i, d in enumerate(out)
    )


def _fit(step_id: str) -> str:
    """A derived id that fits the column: long nested ones keep their start and a hash of the rest."""
    if len(step_id) <= MAX_ID:
        return step_id
    return step_id[: MAX_ID - 17] + "~" + hashlib.sha256(step_id.encode()).hexdigest()[:16]


def _derived_ids(steps: list[Any], kinds: list[str], prefix: str) -> list[tuple[str, str | None]]:
    """(id, rescue key) of each step of one list: its own id, or one anchored on named neighbours."""
    ids: list[tuple[str, str | None]] = []
    anchor = "^"
    seen: dict[str, int] = {}
    for step, kind in zip(steps, kinds, strict=True):
        if step.id:
            anchor, seen = step.id, {}
            ids.append((step.id, None))
            continue
        seen[kind] = seen.get(kind, 0) + 1
        ordinal = "" if seen[kind] == 1 else f"#{seen[kind]}"
        ids.append((_fit(f"{prefix}{anchor}>{kind}{ordinal}"), None))
    following: str | None = None
    counts: dict[str, int] = {}
    for i in range(len(steps) - 1, -1, -1):
        step, kind = steps[i], kinds[i]
        if step.id:
            following, counts = step.id, {}
            continue
        counts[kind] = counts.get(kind, 0) + 1
        if following is not None:
            ids[i] = (ids[i][0], f"{prefix}{kind}#{counts[kind]}<{following}")
    return ids


def _emit(
    steps: list[Any],
    loc: tuple[str | int, ...],
    out: list[_Draft],
    conds: dict[Any, ast.Condition],
    prefix: str = "",
) -> None:
    kinds = [next(k for k in KINDS if hasattr(step, k)) for step in steps]
    for i, (step, kind, (step_id, rescue)) in enumerate(
        zip(steps, kinds, _derived_ids(steps, kinds, prefix), strict=True)
    ):
        here = loc + (i,)
        draft = _Draft(step_id, kind, here, guard=conds.get(here + ("if",)), rescue=rescue)
        out.append(draft)
        if kind in MESSAGE_KINDS:
            draft.spec = getattr(step, kind)
        elif kind == "wait":
            draft.duration = step.wait
        elif kind == "wait_until":
            draft.condition = conds.get(here + ("wait_until",))
            draft.duration = step.timeout
        else:
            draft.condition = conds.get(here + ("branch", "if"))
            _emit(step.branch.then, here + ("branch", "then"), out, conds, f"{step_id}:then:")
            jump = _Draft(_fit(f"{step_id}:end"), "jump", here)
            out.append(jump)
            draft.alt = len(out)
            _emit(step.branch.else_, here + ("branch", "else"), out, conds, f"{step_id}:else:")
            jump.next = len(out)
    # sequential fall-through: each non-jump instruction continues with the one after it
    for idx, draft in enumerate(out):
        if draft.kind != "jump" and draft.next == -1:
            draft.next = idx + 1


def after(program: tuple[Instr, ...], instr: Instr) -> int:
    """Where the journey goes on once `instr` is done (a branch: the step after both arms)."""
    if instr.kind == "branch":
        return program[instr.alt - 1].next  # the jump that closes the `then` arm
    return instr.next


def legacy_id(instr: Instr) -> str:
    """The positional id earlier versions gave an unnamed step (`wait@1`), to read old enrollments."""
    return instr.kind + "@" + ".".join(str(p) for p in instr.loc[1:])
