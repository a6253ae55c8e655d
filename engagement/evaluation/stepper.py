"""The pure decision: given an enrollment's position, the time and what holds, what happens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from engagement import vocab
from engagement.conditions import ast
from engagement.journeys.program import Branch, Instr, Jump, Message, Wait, WaitUntil
from engagement.journeys.program import after as program_after

MAX_HOPS = 1000  # a journey never needs more instant steps than this in one tick


@dataclass
class Decision:
    """What to do with one due enrollment."""

    messages: list[tuple[Message, datetime]] = field(default_factory=list)  # with the moment it became due
    skipped: list[Instr] = field(default_factory=list)
    step_id: str | None = None
    next_action_at: datetime | None = None
    wait_started_at: datetime | None = None
    outcome: vocab.EnrollmentOutcome | None = None  # completed | holdout (ran out of steps)
    reason: str | None = None


def decide(
    program: tuple[Instr, ...],
    position: int,
    wait_started_at: datetime | None,
    now: datetime,
    holds: Callable[[ast.Condition], bool],
    *,
    holdout: bool,
    due_since: datetime | None = None,
) -> Decision:
    """Walk instant steps from `position` until a wait, or the end of the journey.

    `due_since` is when the enrollment became due; each message carries the moment its step
    became due, so a step whose moment passed long ago (downtime, un-pausing) can be skipped;
    a wait reached on the way starts at that moment too, so a series keeps its dates.
    """
    decision = Decision()
    index = position
    waited_since = wait_started_at
    moment = min(due_since or now, now)
    for _ in range(MAX_HOPS):
        if index >= len(program):
            decision.outcome = (
                vocab.EnrollmentOutcome.HOLDOUT if holdout else vocab.EnrollmentOutcome.COMPLETED
            )
            return decision
        instr = program[index]
        if isinstance(instr, Jump):
            index = instr.next
            continue
        if instr.guard is not None and not holds(instr.guard):
            decision.skipped.append(instr)  # a skipped branch skips both of its arms
            index, waited_since = program_after(program, instr), None
            continue
        if isinstance(instr, Branch):
            index = instr.next if holds(instr.condition) else instr.alt
            continue
        if isinstance(instr, Wait):
            started = waited_since or moment
            if now >= started + instr.duration:
                index, waited_since, moment = instr.next, None, started + instr.duration
                continue
            return _park(decision, instr, started, started + instr.duration)
        if isinstance(instr, WaitUntil):
            started = waited_since or moment
            until = started + instr.timeout if instr.timeout is not None else None
            if holds(instr.condition):
                index, waited_since, moment = instr.next, None, now
                continue
            if until is not None and now >= until:  # timed out: the next step was due at the timeout
                index, waited_since, moment = instr.next, None, until
                continue
            return _park(decision, instr, started, until)
        if not holdout:  # what is left is a message
            decision.messages.append((instr, moment))
        index, waited_since = instr.next, None
    raise RuntimeError(f"journey loops at step {program[index].step_id!r}")


def _park(decision: Decision, instr: Instr, started: datetime, until: datetime | None) -> Decision:
    decision.step_id = instr.step_id
    decision.wait_started_at = started
    decision.next_action_at = until
    return decision
