"""Explain where one subject stands in one journey: each part with its value now, then one sentence.

The reading is done once (`load`); the judging (`judge`) is pure and follows the tick's order of checks
(evaluation/tick.py): a draft never runs; goal, then exit, end an active enrollment; a paused journey
enrolls and moves nobody; `enroll.candidates` admits a subject whose contact is not erased, whose
trigger fires, whose filter holds, whose goal and exit do not, and whose `re_entry` allows it; then
the due enrollments step (`stepper.decide`). `After` is where the next tick leaves the subject: a test
holds it against what the tick does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from engagement import durations, errors, vocab
from engagement.conditions import ast, pure, sql
from engagement.conditions.context import EvalContext
from engagement.config import Settings
from engagement.delivery import dispatch, policy, suppression, windows
from engagement.evaluation import holdout, moves, stepper, variants
from engagement.evaluation.tick import context as eval_context
from engagement.journeys.catalog import Journey
from engagement.journeys.program import Email, InApp, Instr, Survey, Wait, WaitUntil
from engagement.journeys.spec import ReEntryAfter
from engagement.store import schema
from engagement.store.database import Database

en = schema.enrollments
Standing = vocab.Standing
ENROLLED_NOW = "it is enrolled already"
OPS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in", "not_in": "not in"}


@dataclass(frozen=True)
class Part:
    """One part of the journey: what it says, the subject's value now, and whether it holds."""

    part: str
    rule: str
    value: str
    holds: bool | None = None  # None: not a yes-or-no question


@dataclass(frozen=True)
class After:
    """Where the next tick leaves the subject's latest enrollment (state None: not enrolled)."""

    state: str | None
    step_id: str | None = None
    outcome: str | None = None
    holdout: bool | None = None


@dataclass(frozen=True)
class Enrolled:
    """One of the subject's enrollments in the journey, as stored."""

    state: str
    step_id: str | None
    holdout: bool
    entered_at: datetime
    ended_at: datetime | None
    outcome: str | None
    next_action_at: datetime | None
    wait_started_at: datetime | None


@dataclass(frozen=True)
class Sending:
    """What the delivery rules read for a contact: address, suppression, last week's emails, zone."""

    email: str | None
    suppressed: bool
    recent_emails: tuple[datetime, ...]
    zone: ZoneInfo
    weekly_cap: int | None


@dataclass
class Explanation:
    """Every part of a journey for one subject, the standing and its sentence."""

    journey_id: str
    audience: str
    subject_id: str
    now: datetime
    standing: vocab.Standing
    sentence: str
    after: After
    parts: list[Part] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (`--format json`, the pages)."""
        data = asdict(self)
        data["now"] = self.now.isoformat()
        data["standing"] = self.standing.value
        return data


@dataclass(frozen=True)
class Subject:
    """Everything `judge` reads about one subject."""

    subject_id: str
    facts: pure.Facts
    enrollments: tuple[Enrolled, ...]  # oldest first
    sending: Sending | None  # a contact's; None for an account
    recipients: tuple[int, int] | None = None  # an account's: contacts `recipients` picks, those emailable
    outline: Any = None  # the journey's steps as the database last ran them (evaluation/moves.py)


def explain(
    db: Database,
    settings: Settings,
    journey: Journey,
    now: datetime,
    *,
    contact: str | None = None,
    account: str | None = None,
) -> Explanation:
    """Explain `journey` for a contact or an account (an account journey explains a contact's account)."""
    if (contact is None) == (account is None):
        raise errors.EngagementError("explain: give exactly one of --contact ID or --account ID")
    with db.begin() as conn:
        subject_id = account
        if journey.audience == "contact":
            if contact is None:
                raise errors.EngagementError(
                    f"--account: journey {journey.id!r} enrolls contacts; explain it with --contact ID"
                )
            subject_id = contact
        elif contact is not None:
            c = schema.contacts.c
            subject_id = conn.execute(select(c.account_id).where(c.id == contact)).scalar_one_or_none()
            if subject_id is None:
                raise errors.NotFoundError(f"--contact: no contact {contact!r}")
        assert subject_id is not None
        subject = load(conn, settings, journey, subject_id, now)
    return judge(journey, eval_context(settings, journey, now), subject)


def load(conn: Connection, settings: Settings, journey: Journey, subject_id: str, now: datetime) -> Subject:
    """Read one subject's facts, enrollments and sending state (a NotFoundError when it does not exist)."""
    facts = pure.load_facts(conn, journey.audience, subject_id)
    if facts is None:
        raise errors.NotFoundError(
            f"no {journey.audience} {subject_id!r} (journey {journey.id!r} is for {journey.audience}s)"
        )
    rows = conn.execute(
        select(en).where(en.c.journey_id == journey.id, en.c.subject_id == subject_id).order_by(en.c.id)
    ).mappings()
    enrollments = tuple(
        Enrolled(
            r["state"],
            r["step_id"],
            bool(r["holdout"]),
            r["entered_at"],
            r["ended_at"],
            r["outcome"],
            r["next_action_at"],
            r["wait_started_at"],
        )
        for r in rows
    )
    sending = None
    if facts.contact is not None:
        email = facts.contact.get("email")
        traits = facts.account.get("traits") or {}
        account_zone = traits.get("timezone") if isinstance(traits, dict) else None
        setting = journey.spec.send_window.timezone if journey.spec.send_window else "contact"
        recent = dispatch.recent_emails(conn, [subject_id], now).get(subject_id, [])
        sending = Sending(
            email=email,
            suppressed=isinstance(email, str) and bool(suppression.suppressed(conn, [email])),
            recent_emails=tuple(recent),
            zone=windows.resolve_zone(
                setting,
                facts.contact.get("timezone"),
                account_zone if isinstance(account_zone, str) else None,
            ),
            weekly_cap=settings.limits.emails_per_contact_per_week,
        )
    recipients = _recipients(conn, journey, settings, subject_id, now) if facts.contact is None else None
    outline = conn.execute(select(schema.journeys.c.steps).where(schema.journeys.c.id == journey.id))
    return Subject(subject_id, facts, enrollments, sending, recipients, outline.scalar_one_or_none())


def _recipients(
    conn: Connection, journey: Journey, settings: Settings, account_id: str, now: datetime
) -> tuple[int, int]:
    """How many of the account's contacts an account journey's messages go to (advance.deliveries' rule:
    not erased, `recipients` holds), and how many of those have an address that is not suppressed."""
    people, _ = sql.subjects_from("contact")
    c = schema.contacts.c
    where = [c.account_id == account_id, c.erased_at.is_(None)]
    if journey.recipients is not None:
        where.append(
            sql.compile_condition(journey.recipients, eval_context(settings, journey, now).for_contacts())
        )
    emails = list(conn.execute(select(c.email).select_from(people).where(*where)).scalars())
    addresses = [e for e in emails if e]
    return len(emails), len(addresses) - len(suppression.suppressed(conn, addresses))


def judge(journey: Journey, ctx: EvalContext, subject: Subject) -> Explanation:
    """The pure walk over the journey's parts for one subject, in the tick's order."""
    facts, now = subject.facts, ctx.now
    parts: list[Part] = [Part("status", journey.status, journey.status, journey.status == "active")]

    def holds(cond: ast.Condition) -> bool:
        return pure.evaluate(cond, facts, ctx)

    latest = subject.enrollments[-1] if subject.enrollments else None
    active = latest if latest is not None and latest.state == vocab.EnrollmentState.ACTIVE else None
    moved: After | None = None
    if active is not None and journey.status != "draft" and subject.outline != moves.outline(journey):
        active, moved = _move(journey, active, subject.outline, now, parts)
    has_account = bool(facts.account)
    erased_at = facts.contact.get("erased_at") if facts.contact is not None else None
    if facts.contact is not None:
        parts.append(
            Part(
                "account",
                "the contact's account is imported",
                str(facts.contact.get("account_id")),
                has_account,
            )
        )
        parts.append(Part("erased", "not erased", _when(erased_at) if erased_at else "no", erased_at is None))
    occurrences = _trigger(journey, ctx, facts, parts)
    _condition(parts, "filter", journey.filter, facts, ctx)
    goal = _condition(parts, "goal", journey.goal, facts, ctx)
    leave = _condition(parts, "exit", journey.exit, facts, ctx)
    blocked, spent = _re_entry(journey, ctx, subject.enrollments, occurrences, parts)
    held = _holdout(journey, subject, active, parts)
    if active is not None:
        _step(journey, active, facts, ctx, parts)
        _variant(journey, active, subject.subject_id, parts)
    if subject.sending is not None:
        _sending(journey, subject.sending, now, parts)
    if subject.recipients is not None:
        picked, emailable = subject.recipients
        rule = text(journey.recipients) if journey.recipients is not None else "every contact of the account"
        value = f"{picked} contact(s), {emailable} with an address not suppressed"
        parts.append(Part("recipients", rule, value, picked > 0))

    def result(standing: vocab.Standing, sentence: str, after: After) -> Explanation:
        return Explanation(
            journey.id, journey.audience, subject.subject_id, now, standing, sentence, after, parts
        )

    stays = _as_stored(latest)
    if moved is not None:
        assert latest is not None
        return result(
            Standing.ENROLLED,
            f"enrolled at step {latest.step_id}, which the journey file no longer has: "
            f"the next tick ends it ({moved.outcome})",
            moved,
        )
    if active is not None:
        return result(Standing.ENROLLED, *_enrolled(journey, active, holds, goal, leave, now))
    if journey.status == "draft":
        return result(Standing.DRAFT, "not enrolled: the journey is a draft (a draft never runs)", stays)
    if not has_account:
        account_id = facts.contact.get("account_id") if facts.contact is not None else None
        return result(
            Standing.NO_ACCOUNT, f"not enrolled: the contact's account {account_id!r} is not imported", stays
        )
    if erased_at is not None:
        return result(Standing.ERASED, f"not enrolled: the contact was erased {_when(erased_at)}", stays)
    if blocked is not None:
        assert latest is not None
        if latest.outcome == vocab.EnrollmentOutcome.CONVERTED:
            sentence = f"not enrolled: already converted {_when(latest.ended_at)} ({blocked})"
            return result(Standing.CONVERTED, sentence, stays)
        return result(Standing.RE_ENTRY, f"not enrolled: {blocked}", stays)
    if journey.status != "active":
        return result(Standing.PAUSED, "not enrolled: the journey is paused (nobody enters)", stays)
    trigger = next(p for p in parts if p.part == "trigger")
    if not trigger.holds:
        return result(Standing.TRIGGER, f"not enrolled: trigger {_failing(trigger, parts)}", stays)
    if spent is not None:
        return result(Standing.RE_ENTRY, f"not enrolled: {spent}", stays)
    if journey.filter is not None and not holds(journey.filter):
        return result(Standing.FILTER, f"not enrolled: filter {_why(journey.filter, facts, ctx)}", stays)
    if goal:
        return result(
            Standing.GOAL_REACHED, "not enrolled: the goal is already reached (nothing to move)", stays
        )
    if leave:
        return result(Standing.EXIT, "not enrolled: the exit condition holds", stays)
    decision = stepper.decide(journey.program, 0, None, now, holds, holdout=held, due_since=now)
    after = _after(decision, held)
    group = " in the holdout" if held else ""
    where = (
        f"at step {after.step_id}"
        if after.state == vocab.EnrollmentState.ACTIVE
        else f"and ends at once ({after.outcome})"
    )
    return result(Standing.ENTERS, f"not enrolled yet: enters{group} at the next tick, {where}", after)


def _enrolled(
    journey: Journey, active: Enrolled, holds: Any, goal: bool, leave: bool, now: datetime
) -> tuple[str, After]:
    """The sentence of an active enrollment and where the next tick leaves it (tick.py's order)."""
    group = " (holdout)" if active.holdout else ""
    said = f"enrolled{group} at step {active.step_id} since {_when(active.entered_at)}"
    if journey.status == "draft":
        return f"{said}; the journey is a draft: nothing moves", _as_stored(active)
    if goal:
        return f"{said}; the goal holds: the next tick ends it as converted", _ended(
            vocab.EnrollmentOutcome.CONVERTED, active
        )
    if leave:
        return f"{said}; the exit condition holds: the next tick ends it", _ended(
            vocab.EnrollmentOutcome.EXITED, active
        )
    if journey.status != "active":
        return f"{said}; the journey is paused: it waits", _as_stored(active)
    position = journey.position(active.step_id)
    due_since = active.next_action_at
    if position is None:  # the file lost the step after its outline was recorded: advancing ends it when due
        if due_since is None or due_since > now:
            return f"{said}; that step is gone from the journey file", _as_stored(active)
        return f"{said}; that step is gone: the next tick ends it", _ended(
            vocab.EnrollmentOutcome.EXITED, active, None
        )
    instr = journey.program[position]
    woken = isinstance(instr, WaitUntil) and (due_since is None or due_since > now) and holds(instr.condition)
    if woken:
        due_since = now
    if due_since is None or due_since > now:
        waits = f", waiting until {_when(due_since)}" if due_since is not None else ", waiting"
        return said + waits, _as_stored(active)
    decision = stepper.decide(
        journey.program,
        position,
        active.wait_started_at,
        now,
        holds,
        holdout=active.holdout,
        due_since=due_since,
    )
    after = _after(decision, active.holdout)
    moves = f"moves on to step {after.step_id}" if after.step_id else f"ends it ({after.outcome})"
    return f"{said}; due now: the next tick {moves}", after


def _after(decision: stepper.Decision, held: bool) -> After:
    if decision.outcome is not None:
        return After(vocab.EnrollmentState.ENDED, None, decision.outcome, held)
    return After(vocab.EnrollmentState.ACTIVE, decision.step_id, None, held)


def _ended(outcome: str, active: Enrolled, step_id: str | None = "") -> After:
    """Goal and exit end an enrollment where it stands (it keeps its step, unless `step_id` is given)."""
    return After(
        vocab.EnrollmentState.ENDED, active.step_id if step_id == "" else step_id, outcome, active.holdout
    )


def _move(
    journey: Journey, active: Enrolled, outline: Any, now: datetime, parts: list[Part]
) -> tuple[Enrolled | None, After | None]:
    """What the tick's first move (moves.apply) does to an enrollment at a step the file no longer has:
    the enrollment as moved, or None and where it ends."""
    if journey.position(active.step_id) is not None or active.step_id is None:
        return active, None
    target = moves.resolve(active.step_id, outline, journey)
    where = target.step_id or "the end"
    parts.append(
        Part("moved", f"step {active.step_id} is not in the file", f"to {where} ({target.reason})", None)
    )
    if target.step_id is None:
        outcome = target.outcome
        if outcome == vocab.EnrollmentOutcome.COMPLETED and active.holdout:
            outcome = vocab.EnrollmentOutcome.HOLDOUT
        return None, After(vocab.EnrollmentState.ENDED, None, outcome, active.holdout)
    if target.same_step:
        return replace(active, step_id=target.step_id), None
    return replace(active, step_id=target.step_id, next_action_at=now, wait_started_at=None), None


def _as_stored(enrolled: Enrolled | None) -> After:
    if enrolled is None:
        return After(None)
    return After(enrolled.state, enrolled.step_id, enrolled.outcome, enrolled.holdout)


def _trigger(
    journey: Journey, ctx: EvalContext, facts: pure.Facts, parts: list[Part]
) -> list[datetime] | None:
    """Add the trigger's part; return the occurrences inside the lookback (None for a condition trigger)."""
    trigger, now = journey.spec.trigger, ctx.now
    lookback = journey.spec.lookback
    if trigger.kind == "condition":
        assert journey.trigger is not None
        _condition(parts, "trigger", journey.trigger, facts, ctx)
        return None
    if trigger.kind == "event":
        name = str(trigger.event)
        seen = [at for n, at in facts.events if n == name]
        rule = f"event {name} within the lookback ({durations.format_duration(lookback)})"
    else:
        name = str(trigger.milestone)
        reached = facts.milestones.get(name)
        seen = [] if reached is None else [reached]
        rule = f"milestone {name} within the lookback ({durations.format_duration(lookback)})"
    inside = sorted(at for at in seen if now - lookback < at <= now)
    if inside:
        value = f"{len(inside)}, the last {_when(inside[-1])}"
    elif seen:
        value = f"none inside; the last {_when(max(seen))}"
    else:
        value = "never"
    parts.append(Part("trigger", rule, value, bool(inside)))
    return inside


def _condition(
    parts: list[Part], part: str, cond: ast.Condition | None, facts: pure.Facts, ctx: EvalContext
) -> bool:
    """Add a condition's part and one row per leaf; whether it holds (False when there is none)."""
    if cond is None:
        parts.append(Part(part, "none", "", None))
        return False
    holds = pure.evaluate(cond, facts, ctx)
    leaves = list(_leaves(cond))
    if len(leaves) == 1 and leaves[0][0] == 0:
        parts.append(Part(part, text(cond), _value(cond, facts, ctx), holds))
        return holds
    parts.append(Part(part, text(cond), "", holds))
    for depth, leaf in leaves:
        rule = "  " * depth + text(leaf)
        parts.append(Part(f"{part} ·", rule, _value(leaf, facts, ctx), pure.evaluate(leaf, facts, ctx)))
    return holds


def _leaves(cond: ast.Condition, depth: int = 0) -> list[tuple[int, ast.Condition]]:
    if isinstance(cond, ast.All | ast.AnyOf):
        return [leaf for item in cond.items for leaf in _leaves(item, depth + 1)]
    if isinstance(cond, ast.Not):
        return _leaves(cond.item, depth + 1)
    return [(depth, cond)]


def _failing(trigger: Part, parts: list[Part]) -> str:
    """The trigger's reason: its rule and value."""
    leaves = [p for p in parts if p.part == "trigger ·" and not p.holds]
    if leaves:
        return f"{leaves[0].rule.strip()} is false (now {leaves[0].value})"
    if trigger.value:
        return f"{trigger.rule}: {trigger.value}"
    return f"{trigger.rule} does not hold"


def _why(cond: ast.Condition, facts: pure.Facts, ctx: EvalContext) -> str:
    """Why a condition is false, as short as it can be said: `account.touch = low, needs tech`."""
    if isinstance(cond, ast.All):
        return _why(next(c for c in cond.items if not pure.evaluate(c, facts, ctx)), facts, ctx)
    if isinstance(cond, ast.AnyOf):
        return "none of: " + "; ".join(_why(c, facts, ctx) for c in cond.items)
    if isinstance(cond, ast.Not):
        return f"{text(cond.item)} holds (now {_value(_first_leaf(cond.item), facts, ctx)}), needs it not to"
    if isinstance(cond, ast.Attr):
        name = ".".join((cond.scope, *cond.path))
        return f"{name} = {_show(pure.reading(cond, facts, ctx))}, needs {_needs(cond)}"
    return f"{text(cond)} is false (now {_value(cond, facts, ctx)})"


def _first_leaf(cond: ast.Condition) -> ast.Condition:
    return _leaves(cond)[0][1]


def _needs(cond: ast.Attr) -> str:
    if cond.op == "eq":
        return _show(cond.value)
    if cond.op == "in":
        return "one of " + ", ".join(_show(v) for v in cond.value)
    if cond.op == "not_in":
        return "none of " + ", ".join(_show(v) for v in cond.value)
    if cond.op == "exists":
        return "a value" if cond.value else "no value"
    if cond.op == "contains":
        return f"it to contain {_show(cond.value)}"
    return f"{OPS[cond.op]} {_show(cond.value)}"


def text(cond: ast.Condition) -> str:
    """A condition in one line, close to how a journey file writes it."""
    if isinstance(cond, ast.All):
        return "all of (" + "; ".join(text(c) for c in cond.items) + ")"
    if isinstance(cond, ast.AnyOf):
        return "any of (" + "; ".join(text(c) for c in cond.items) + ")"
    if isinstance(cond, ast.Not):
        return f"not ({text(cond.item)})"
    if isinstance(cond, ast.Attr):
        name = ".".join((cond.scope, *cond.path))
        if cond.op in ("in", "not_in"):
            return f"{name} {OPS[cond.op]} [{', '.join(_show(v) for v in cond.value)}]"
        if cond.op in ("exists", "contains"):
            return f"{name} {cond.op} {_show(cond.value)}"
        return f"{name} {OPS[cond.op]} {_show(cond.value)}"
    if isinstance(cond, ast.Milestone):
        return f"milestone {cond.name}" + _within(cond.within)
    if isinstance(cond, ast.EventCount):
        return f"event_count {cond.event}{_within(cond.within)} {_bounds(cond.bounds)}"
    if isinstance(cond, ast.Days):
        return f"days_{cond.direction} {cond.field} {_bounds(cond.bounds)}"
    if isinstance(cond, ast.Score):
        return f"{'account_score' if cond.scope == 'account' else 'score'} {_bounds(cond.bounds)}"
    if isinstance(cond, ast.Health):
        return f"health {cond.band}"
    if isinstance(cond, ast.HealthScore):
        return f"health_score {_bounds(cond.bounds)}"
    if isinstance(cond, ast.HealthChange):
        return f"health_change{_within(cond.within)} {_bounds(cond.bounds)}"
    return f"survey {cond.kind}{_within(cond.within)} {_bounds(cond.bounds)}".rstrip()


def _within(within: timedelta | None) -> str:
    return "" if within is None else f" within {durations.format_duration(within)}"


def _bounds(bounds: tuple[ast.Bound, ...]) -> str:
    return " and ".join(f"{OPS[op]} {_show(n)}" for op, n in bounds)


def _value(cond: ast.Condition, facts: pure.Facts, ctx: EvalContext) -> str:
    if isinstance(cond, ast.All | ast.AnyOf | ast.Not):
        return ""
    value = pure.reading(cond, facts, ctx)
    if value is None:
        return "not reached" if isinstance(cond, ast.Milestone) else "none"
    return _show(value)


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "none"
    return str(value)


def _when(at: datetime | None) -> str:
    return "never" if at is None else at.isoformat(timespec="minutes")


def _re_entry(
    journey: Journey,
    ctx: EvalContext,
    enrollments: tuple[Enrolled, ...],
    occurrences: list[datetime] | None,
    parts: list[Part],
) -> tuple[str | None, str | None]:
    """Add the re-entry part; return why an earlier enrollment blocks entering (or None), and why every
    occurrence of an event or milestone trigger is spent (or None): `enroll._re_entry_allows`'s twin."""
    rule = journey.spec.re_entry
    shown = f"after {durations.format_duration(rule.after)}" if isinstance(rule, ReEntryAfter) else rule
    value = f"{len(enrollments)} earlier" if enrollments else "never enrolled"
    blocked: str | None = None
    if rule == "never" and enrollments:
        blocked = f"re-entry never, and it was enrolled {_when(enrollments[-1].entered_at)}"
    elif any(e.state == vocab.EnrollmentState.ACTIVE for e in enrollments):
        blocked = ENROLLED_NOW
    elif isinstance(rule, ReEntryAfter):
        recent = [e.entered_at for e in enrollments if e.entered_at > ctx.now - rule.after]
        if recent:
            blocked = f"re-entry after {shown}: it entered {_when(max(recent))}, again from {_when(max(recent) + rule.after)}"
    spent: str | None = None
    if blocked is None and occurrences and rule != "never":
        ends = [e.ended_at for e in enrollments if e.ended_at is not None]
        if ends and all(at <= max(ends) for at in occurrences):
            last, ended = _when(max(occurrences)), _when(max(ends))
            spent = f"the trigger's last occurrence ({last}) came before its last enrollment ended ({ended})"
    if blocked == ENROLLED_NOW:  # not a question while it is in the journey
        parts.append(Part("re-entry", str(shown), "enrolled now", None))
    else:
        parts.append(Part("re-entry", str(shown), value, blocked is None and spent is None))
    return blocked, spent


def _holdout(journey: Journey, subject: Subject, active: Enrolled | None, parts: list[Part]) -> bool:
    """Add the holdout part; whether the subject is (or would be) in the holdout."""
    account_id = subject.facts.account.get("id")
    held = (
        active.holdout
        if active is not None
        else holdout.in_holdout(
            journey.id, subject.subject_id, journey.holdout, by=journey.holdout_by, account_id=account_id
        )
    )
    rule = f"{journey.holdout:.0%} by {journey.holdout_by}" if journey.holdout else "none"
    parts.append(Part("holdout", rule, "in the holdout" if held else "receives messages", None))
    return held


def _step(journey: Journey, active: Enrolled, facts: pure.Facts, ctx: EvalContext, parts: list[Part]) -> None:
    """Add the current step and what it waits for."""
    position = journey.position(active.step_id)
    if position is None:
        parts.append(Part("step", str(active.step_id), "removed from the journey file", None))
        return
    instr: Instr = journey.program[position]
    if isinstance(instr, Wait):
        rule = f"wait {durations.format_duration(instr.duration)}"
        parts.append(Part("step", f"{instr.step_id}: {rule}", f"until {_when(active.next_action_at)}", None))
    elif isinstance(instr, WaitUntil):
        timeout = f", timeout {durations.format_duration(instr.timeout)}" if instr.timeout else ""
        parts.append(
            Part(
                "step",
                f"{instr.step_id}: wait_until{timeout}",
                f"times out {_when(active.next_action_at)}",
                None,
            )
        )
        _condition(parts, "waits for", instr.condition, facts, ctx)
    else:
        parts.append(
            Part("step", f"{instr.step_id}: {instr.kind}", f"due {_when(active.next_action_at)}", None)
        )
        if instr.guard is not None:
            _condition(parts, "step if", instr.guard, facts, ctx)


def _variant(journey: Journey, active: Enrolled, subject_id: str, parts: list[Part]) -> None:
    """Add which variant the current message step sends (each recipient's own, in an account journey)."""
    instr = journey.step(active.step_id) if active.step_id is not None else None
    if not isinstance(instr, Email | InApp | Survey) or not instr.variants:
        return
    ids = ", ".join(v.id for v in instr.variants)
    if journey.audience == "contact":
        value = str(variants.variant_for(journey, str(active.step_id), subject_id))
    else:
        value = "one per recipient, by a hash of journey, step and contact"
    parts.append(Part("variant", f"{active.step_id}: one of {ids}", value, None))


def _sending(journey: Journey, sending: Sending, now: datetime, parts: list[Part]) -> None:
    """Add suppression, the weekly cap and the send window (delivery/policy.py's checks) for a contact."""
    if sending.email:
        state = "suppressed" if sending.suppressed else "not suppressed"
        parts.append(
            Part(
                "suppression",
                "email not on the suppression list",
                f"{sending.email}: {state}",
                not sending.suppressed,
            )
        )
    else:
        parts.append(Part("suppression", "email not on the suppression list", "no email address", False))
    if sending.weekly_cap is None:
        parts.append(Part("cap", "no weekly cap", f"{len(sending.recent_emails)} email(s) in 7 days", True))
    else:
        release = policy.cap_release(sending.recent_emails, sending.weekly_cap, now)
        counted = sum(1 for t in sending.recent_emails if now - policy.WEEK < t <= now)
        value = f"{counted} email(s) in 7 days" + ("" if release is None else f", next from {_when(release)}")
        parts.append(Part("cap", f"at most {sending.weekly_cap} emails a week", value, release is None))
    spec = journey.spec.send_window
    if spec is None:
        parts.append(Part("send window", "none (any time)", "", True))
        return
    window = windows.Window.from_spec(spec)
    local = now.astimezone(sending.zone)
    opens = windows.next_open(window, now, sending.zone)
    value = f"{local:%a %H:%M} {sending.zone.key}" + ("" if opens <= now else f", opens {_when(opens)}")
    days = spec.days if isinstance(spec.days, str) else ",".join(spec.days)
    parts.append(Part("send window", f"{days} {spec.hours} ({spec.timezone})", value, opens <= now))
