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
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, Literal, TypedDict, TypeVar

from engagement import vocab
from engagement.conditions import ast
from engagement.journeys import spec
from engagement.journeys.spec import EmailSpec, InAppSpec, SurveySpec

MESSAGE_KINDS = (*vocab.Channel, "survey")  # the step kinds that send something
MAX_ID = 100  # the step_id columns' length
Loc = tuple[str | int, ...]
S = TypeVar("S", spec.EmailSpec, spec.InAppSpec, spec.SurveySpec)


@dataclass(frozen=True, kw_only=True)
class Placed:
    """What every instruction has: its place, its id, its `if:` and where the journey goes after it."""

    index: int
    step_id: str
    loc: Loc
    next: int
    guard: ast.Condition | None = None  # `if:` on the step
    rescue: str | None = None  # unnamed steps: the same step located from the named step after it


@dataclass(frozen=True)
class Variant(Generic[S]):
    """One variant of a message step: its id, its weight and its whole message (the step's, with its keys)."""

    id: str
    weight: int
    spec: S


@dataclass(frozen=True, kw_only=True)
class Email(Placed):
    """Send an email."""

    kind: Literal[vocab.Channel.EMAIL] = field(default=vocab.Channel.EMAIL, init=False)
    spec: spec.EmailSpec
    variants: tuple[Variant[EmailSpec], ...] = ()

    def message(self, variant: str | None) -> EmailSpec:
        """The email a recipient of `variant` gets (the step's own when it has no such variant)."""
        return _chosen(self.variants, variant, self.spec)

    @property
    def channel(self) -> vocab.Channel:
        """Where the message goes (every message has one: a survey goes by email or in-app)."""
        return vocab.Channel.EMAIL


@dataclass(frozen=True, kw_only=True)
class InApp(Placed):
    """Put a nudge in the contact's in-app inbox."""

    kind: Literal[vocab.Channel.IN_APP] = field(default=vocab.Channel.IN_APP, init=False)
    spec: spec.InAppSpec
    variants: tuple[Variant[InAppSpec], ...] = ()

    def message(self, variant: str | None) -> InAppSpec:
        """The nudge a recipient of `variant` gets."""
        return _chosen(self.variants, variant, self.spec)

    @property
    def channel(self) -> vocab.Channel:
        """Where the message goes."""
        return vocab.Channel.IN_APP


@dataclass(frozen=True, kw_only=True)
class Notify(Placed):
    """Post a message to a named webhook."""

    kind: Literal[vocab.Channel.NOTIFY] = field(default=vocab.Channel.NOTIFY, init=False)
    spec: spec.NotifySpec

    @property
    def channel(self) -> vocab.Channel:
        """Where the message goes."""
        return vocab.Channel.NOTIFY


@dataclass(frozen=True, kw_only=True)
class Survey(Placed):
    """Ask an NPS or CSAT question, by email or in-app."""

    kind: Literal["survey"] = field(default="survey", init=False)
    spec: spec.SurveySpec
    variants: tuple[Variant[SurveySpec], ...] = ()

    def message(self, variant: str | None) -> SurveySpec:
        """The survey a recipient of `variant` is asked."""
        return _chosen(self.variants, variant, self.spec)

    @property
    def channel(self) -> vocab.Channel:
        """Where the question goes: the survey's own channel."""
        return vocab.Channel(self.spec.channel)


@dataclass(frozen=True, kw_only=True)
class Wait(Placed):
    """Wait this long."""

    kind: Literal["wait"] = field(default="wait", init=False)
    duration: timedelta


@dataclass(frozen=True, kw_only=True)
class WaitUntil(Placed):
    """Wait until the condition holds, or the timeout (if any) passes."""

    kind: Literal["wait_until"] = field(default="wait_until", init=False)
    condition: ast.Condition
    timeout: timedelta | None = None


@dataclass(frozen=True, kw_only=True)
class Branch(Placed):
    """Go on with the `then` arm (at `next`) when the condition holds, else with the `else` arm (at `alt`)."""

    kind: Literal["branch"] = field(default="branch", init=False)
    condition: ast.Condition
    alt: int


@dataclass(frozen=True, kw_only=True)
class Jump(Placed):
    """The end of a `then` arm: go on after the `else` arm."""

    kind: Literal["jump"] = field(default="jump", init=False)


Message = Email | InApp | Notify | Survey
Varied = Email | InApp | Survey  # the message steps that may carry variants


def _chosen(variants: tuple[Variant[S], ...], chosen: str | None, own: S) -> S:
    return next((v.spec for v in variants if v.id == chosen), own)


def _variants(step: spec.EmailStep | spec.InAppStep | spec.SurveyStep, own: S) -> tuple[Variant[S], ...]:
    """The step's variants, each the step's message with the variant's keys (catalog.py checked them)."""
    weights = step.weights or {}
    made = []
    for v in step.variants or []:
        changed = v.model_dump(exclude_unset=True, exclude={"id"})
        merged = type(own).model_validate({**own.model_dump(by_alias=True), **changed})
        made.append(Variant(v.id, weights.get(v.id, 1), merged))
    return tuple(made)


Instr = Email | InApp | Notify | Survey | Wait | WaitUntil | Branch | Jump


class _Placing(TypedDict):
    index: int
    step_id: str
    loc: Loc
    next: int
    guard: ast.Condition | None
    rescue: str | None


def build(steps: list[spec.Step], conditions: dict[Loc, ast.Condition]) -> tuple[Instr, ...]:
    """Flatten parsed steps; `conditions` maps each condition's location to its AST."""
    return tuple(_emit(steps, ("steps",), 0, conditions))


def _fit(step_id: str) -> str:
    """A derived id that fits the column: long nested ones keep their start and a hash of the rest."""
    if len(step_id) <= MAX_ID:
        return step_id
    return step_id[: MAX_ID - 17] + "~" + hashlib.sha256(step_id.encode()).hexdigest()[:16]


def _derived_ids(steps: list[spec.Step], kinds: list[str], prefix: str) -> list[tuple[str, str | None]]:
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


def _kind(step: spec.Step) -> str:
    """The step's key in the file: what derived ids and legacy ids call it."""
    return next(kind for kind in spec.STEP_KINDS if hasattr(step, kind))


def _emit(
    steps: list[spec.Step], loc: Loc, start: int, conds: dict[Loc, ast.Condition], prefix: str = ""
) -> list[Instr]:
    """The instructions of one list of steps, the first at index `start`; each goes on with the one after it."""
    out: list[Instr] = []
    kinds = [_kind(step) for step in steps]
    for i, (step, (step_id, rescue)) in enumerate(
        zip(steps, _derived_ids(steps, kinds, prefix), strict=True)
    ):
        here = loc + (i,)
        index = start + len(out)
        at = _Placing(
            index=index,
            step_id=step_id,
            loc=here,
            next=index + 1,
            guard=conds.get(here + ("if",)),
            rescue=rescue,
        )
        match step:
            case spec.EmailStep():
                out.append(Email(**at, spec=step.email, variants=_variants(step, step.email)))
            case spec.InAppStep():
                out.append(InApp(**at, spec=step.in_app, variants=_variants(step, step.in_app)))
            case spec.NotifyStep():
                out.append(Notify(**at, spec=step.notify))
            case spec.SurveyStep():
                out.append(Survey(**at, spec=step.survey, variants=_variants(step, step.survey)))
            case spec.WaitStep():
                out.append(Wait(**at, duration=step.wait))
            case spec.WaitUntilStep():
                out.append(WaitUntil(**at, condition=conds[here + ("wait_until",)], timeout=step.timeout))
            case spec.BranchStep():
                then = _emit(
                    step.branch.then, here + ("branch", "then"), index + 1, conds, f"{step_id}:then:"
                )
                end = index + 1 + len(then)  # the jump that closes the `then` arm
                else_ = _emit(
                    step.branch.else_, here + ("branch", "else"), end + 1, conds, f"{step_id}:else:"
                )
                branch = Branch(**at, condition=conds[here + ("branch", "if")], alt=end + 1)
                jump = Jump(index=end, step_id=_fit(f"{step_id}:end"), loc=here, next=end + 1 + len(else_))
                out += [branch, *then, jump, *else_]
    return out


def after(program: tuple[Instr, ...], instr: Instr) -> int:
    """Where the journey goes on once `instr` is done (a branch: the step after both arms)."""
    if isinstance(instr, Branch):
        return program[instr.alt - 1].next  # the jump that closes the `then` arm
    return instr.next


def legacy_id(instr: Instr) -> str:
    """The positional id earlier versions gave an unnamed step (`wait@1`), to read old enrollments."""
    return f"{instr.kind}@" + ".".join(str(p) for p in instr.loc[1:])
