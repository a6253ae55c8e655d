"""Load, check and compile every journey file: the one door journeys come in by."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engagement import vocab
from engagement.conditions import ast
from engagement.conditions.parse import COMBINATORS, FORMS, Parser
from engagement.config import Settings
from engagement.delivery import surveys
from engagement.delivery.templates import Renderer, sample_context
from engagement.errors import JourneyError, Problem
from engagement.journeys import files, program, spec
from engagement.journeys.program import Instr
from engagement.responses import inbox

CONDITION_FIELDS = ("filter", "goal", "exit", "recipients")


@dataclass(frozen=True)
class Journey:
    """A validated journey with its conditions parsed and its steps flattened."""

    spec: spec.JourneySpec
    source: Path
    version: str  # a hash of the file's bytes: the version id enrollments and deliveries name
    content: str  # the file's text, kept with its version (schema.JourneyVersion)
    trigger: ast.Condition | None
    filter: ast.Condition | None
    goal: ast.Condition | None
    exit: ast.Condition | None
    recipients: ast.Condition | None
    holdout: float
    holdout_by: vocab.HoldoutBy
    program: tuple[Instr, ...]

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def status(self) -> str:
        return self.spec.status

    @property
    def audience(self) -> str:
        return self.spec.audience

    def position(self, step_id: str | None) -> int | None:
        """The instruction index of a step id (None when the step no longer exists)."""
        if step_id is None:
            return 0
        return next((i.index for i in self.program if i.step_id == step_id), None)

    def step(self, step_id: str) -> Instr | None:
        """The instruction with this id."""
        return next((i for i in self.program if i.step_id == step_id), None)

    def conditions(self) -> Iterator[ast.Condition]:
        """Every step-level condition (guards, waits, branches)."""
        for instr in self.program:
            if instr.guard is not None:
                yield instr.guard
            if isinstance(instr, program.WaitUntil | program.Branch):
                yield instr.condition


@dataclass
class Catalog:
    """Every journey found, by id, and every problem found on the way."""

    journeys: dict[str, Journey]
    problems: list[Problem]

    def get(self, journey_id: str) -> Journey:
        """The journey with this id, or a NotFoundError listing the known ones."""
        from engagement.errors import NotFoundError

        if journey_id not in self.journeys:
            known = ", ".join(sorted(self.journeys)) or "none"
            raise NotFoundError(f"no journey {journey_id!r} (known: {known})")
        return self.journeys[journey_id]

    def raise_problems(self) -> None:
        """Raise JourneyError if any file had a problem."""
        if self.problems:
            raise JourneyError(self.problems, f"{len(self.problems)} problem(s) in journey files:")


def load(targets: list[Path], settings: Settings, renderer: Renderer | None = None) -> Catalog:
    """Load every journey under `targets`, checking everything `engagement validate` checks."""
    renderer = renderer or Renderer(settings.path(settings.templates.dir))
    journeys: dict[str, Journey] = {}
    problems: list[Problem] = []
    paths = files.journey_paths(targets)
    for target in targets:
        if not target.exists():
            problems.append(Problem(str(target), None, "", "no such file or folder"))
    seen: dict[str, Path] = {}
    for path in paths:
        journey, found = _load_one(path, settings, renderer)
        problems += found
        if journey is None:
            continue
        if journey.id in seen:
            src = files.read(path)
            line = src.line_of(("id",)) if isinstance(src, files.SourceFile) else None
            problems.append(
                Problem(
                    str(path), line, "id", f"duplicate journey id {journey.id!r} (also in {seen[journey.id]})"
                )
            )
            continue
        seen[journey.id] = path
        journeys[journey.id] = journey
    return Catalog(journeys, problems)


def _load_one(path: Path, settings: Settings, renderer: Renderer) -> tuple[Journey | None, list[Problem]]:
    source = files.read(path)
    if isinstance(source, Problem):
        return None, [source]
    if not isinstance(source.data, dict):
        return None, [
            Problem(str(path), 1, "", "a journey file is a mapping of keys (id, name, trigger, steps…)")
        ]

    def problem(loc: files.Loc, message: str) -> Problem:
        return Problem(str(path), source.line_of(loc), files.format_loc(loc), message)

    problems: list[Problem] = []
    parsed: spec.JourneySpec | None = None
    try:
        parsed = spec.JourneySpec.model_validate(source.data)
    except ValidationError as exc:
        problems += [problem(loc, msg) for loc, msg in schema_errors(exc)]

    audience: ast.Scope = "account" if source.data.get("audience") == "account" else "contact"
    conditions: dict[files.Loc, ast.Condition] = {}
    for loc, raw, scope in _raw_conditions(source.data, audience):
        parser = Parser(scope)
        cond = parser.parse(raw)
        problems += [problem(loc + sub, msg) for sub, msg in parser.problems]
        if cond is not None:
            conditions[loc] = cond

    context = sample_context(audience, settings.company.model_dump())
    seen_ids: set[str] = set()
    for loc, kind, step in _raw_steps(source.data.get("steps"), ("steps",)):
        step_id = step.get("id")
        if isinstance(step_id, str):
            if step_id in seen_ids:
                problems.append(problem(loc + ("id",), f"duplicate step id {step_id!r}"))
            seen_ids.add(step_id)
        elif kind in program.MESSAGE_KINDS:
            problems.append(problem(loc, f"{kind} steps need an `id` (reports and previews use it)"))
        body = step.get(kind)
        if kind in program.MESSAGE_KINDS and isinstance(body, dict):
            for field, message in _check_message(kind, body, renderer, context, settings):
                problems.append(problem(loc + (kind, *field), message))
            for field, message in _check_variants(kind, step, renderer, context, settings):
                problems.append(problem(loc + field, message))

    if problems or parsed is None:
        return None, problems
    steps = program.build(parsed.steps, conditions)
    problems += [problem(("moved", old), message) for old, message in _check_moved(parsed.moved, steps)]
    if problems:
        return None, problems
    raw = path.read_bytes()
    return (
        Journey(
            spec=parsed,
            source=path,
            version=hashlib.sha256(raw).hexdigest()[:16],
            content=raw.decode("utf-8", errors="replace"),
            trigger=conditions.get(("trigger", "condition")),
            filter=conditions.get(("filter",)),
            goal=conditions.get(("goal",)),
            exit=conditions.get(("exit",)),
            recipients=conditions.get(("recipients",)),
            holdout=parsed.holdout_share,
            holdout_by=parsed.holdout_by,
            program=steps,
        ),
        [],
    )


def _check_moved(moved: dict[str, str], steps: tuple[Instr, ...]) -> list[tuple[str, str]]:
    """(old id, message) for each `moved:` entry that names a step still here or a target that is not."""
    ids = [i.step_id for i in steps if not isinstance(i, program.Jump)]
    found = []
    for old, new in moved.items():
        if old in ids:
            found.append((old, f"step {old!r} is still in the journey; `moved` is for removed steps"))
        elif new not in ids:
            found.append((old, f"no step {new!r} to move to; this journey's steps: {', '.join(ids)}"))
    return found


def _raw_steps(steps: Any, loc: files.Loc) -> Iterator[tuple[files.Loc, str, dict[str, Any]]]:
    """(location, kind, raw step) for every step, branches included, even in an invalid file."""
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        kinds = [k for k in spec.STEP_KINDS if k in step]
        if len(kinds) != 1:
            continue
        yield loc + (i,), kinds[0], step
        branch = step.get("branch")
        if isinstance(branch, dict):
            for arm in ("then", "else"):
                yield from _raw_steps(branch.get(arm), loc + (i, "branch", arm))


def _check_message(
    kind: str, body: dict[str, Any], renderer: Renderer, context: dict[str, Any], settings: Settings
) -> list[tuple[files.Loc, str]]:
    """Render a message step's templates for a sample recipient; (field path, message) problems."""
    if kind == "survey":
        return list(surveys.check(settings, renderer, body, context))
    texts = {"email": ("subject",), "in_app": ("title", "body"), "notify": ("text",)}[kind]
    found: list[tuple[files.Loc, str]] = []
    for field in texts:
        if isinstance(body.get(field), str):
            found += [((f,), m) for f, m in renderer.check_text(field, body[field], context)]
    if kind == "email" and isinstance(body.get("template"), str):
        found += [((f,), m) for f, m in renderer.check_email(body["template"], "", context)]
    if (
        kind == "notify"
        and isinstance(body.get("webhook"), str)
        and settings.webhooks.named(body["webhook"]) is None
    ):
        name = body["webhook"]
        found.append((("webhook",), f"no webhook {name!r} in config; add [webhooks.{name}] url = ..."))
    if kind == "in_app" and isinstance(body.get("cta"), dict):
        found += [(("cta", *f), m) for f, m in _check_cta(body["cta"], renderer, context)]
    return found


MESSAGE_SPECS: dict[str, type[spec.Strict]] = {
    "email": spec.EmailSpec,
    "in_app": spec.InAppSpec,
    "survey": spec.SurveySpec,
}


def _check_variants(
    kind: str, step: dict[str, Any], renderer: Renderer, context: dict[str, Any], settings: Settings
) -> list[tuple[files.Loc, str]]:
    """A message step's `variants` and `weights`: ids unique, weights naming them, each variant (the step's
    message with the variant's keys) a full message whose templates render; (field path, message)."""
    variants, weights, body = step.get("variants"), step.get("weights"), step.get(kind)
    found: list[tuple[files.Loc, str]] = []
    if variants is None:
        if weights is not None:
            found.append((("weights",), "weights are for a step with `variants`"))
        return found
    if kind not in MESSAGE_SPECS:
        return [(("variants",), f"{kind} steps have no variants (email, in_app and survey steps do)")]
    if not isinstance(variants, list) or not isinstance(body, dict):
        return found  # the schema said what is wrong
    ids: list[str] = []
    for i, variant in enumerate(variants):
        if not isinstance(variant, dict):
            continue
        vid = variant.get("id")
        if isinstance(vid, str):
            if vid in ids:
                found.append((("variants", i, "id"), f"duplicate variant id {vid!r}"))
            ids.append(vid)
        fields = MESSAGE_SPECS[kind].model_fields  # a key no message has: the schema reports it already
        changed = {k: v for k, v in variant.items() if k != "id" and k in fields}
        try:
            MESSAGE_SPECS[kind].model_validate({**body, **changed})
        except ValidationError as exc:
            found += [
                (("variants", i, *loc), msg) for loc, msg in schema_errors(exc) if loc and loc[0] in changed
            ]
            continue
        for field, message in _check_message(kind, {**body, **changed}, renderer, context, settings):
            if field and field[0] in changed:
                found.append((("variants", i, *field), message))
    if isinstance(weights, dict):
        for name in weights:
            if name not in ids:
                found.append(
                    (("weights", name), f"no variant {name!r}; this step's variants: {', '.join(ids)}")
                )
        missing = [v for v in ids if v not in weights]
        if missing:
            found.append(
                (("weights",), f"no weight for variant(s) {', '.join(missing)}: give every variant one")
            )
    return found


def _check_cta(
    cta: dict[str, Any], renderer: Renderer, context: dict[str, Any]
) -> list[tuple[files.Loc, str]]:
    """A nudge's call-to-action renders, and links only where inbox.safe_link allows."""
    found: list[tuple[files.Loc, str]] = []
    for field in ("label", "url"):
        if isinstance(cta.get(field), str):
            found += [((f,), m) for f, m in renderer.check_text(field, cta[field], context)]
    url = cta.get("url")
    if isinstance(url, str) and not found:
        rendered = renderer.text(url, context)
        if not inbox.safe_link(rendered):
            shown = repr(url) if rendered == url else f"{url!r} (for a sample contact {rendered!r})"
            found.append((("url",), f"{shown}: {inbox.LINK_RULE}"))
    return found


def schema_errors(exc: ValidationError) -> list[tuple[files.Loc, str]]:
    """Pydantic's errors as (location, message), without the noise of union alternatives."""
    cleaned = [(_clean(err["loc"]), err) for err in exc.errors()]
    found = [(loc, _message(err, loc), err["type"]) for loc, err in cleaned]
    locs = [loc for loc, _, _ in found]
    kept: list[tuple[files.Loc, str]] = []
    for loc, message, kind in found:
        shadowed = kind in ("literal_error", "string_type", "float_parsing", "float_type") and any(
            other[: len(loc)] == loc and len(other) > len(loc) for other in locs
        )
        if not shadowed and (loc, message) not in kept:
            kept.append((loc, message))
    return kept


def _raw_conditions(data: dict[str, Any], audience: ast.Scope) -> Iterator[tuple[files.Loc, Any, ast.Scope]]:
    trigger = data.get("trigger") or {}
    if isinstance(trigger, dict) and "condition" in trigger:
        yield ("trigger", "condition"), trigger["condition"], audience
    for key in CONDITION_FIELDS:
        if data.get(key) is not None:
            yield (key,), data[key], "contact" if key == "recipients" else audience
    yield from _step_conditions(data.get("steps") or [], ("steps",), audience)


def _step_conditions(
    steps: list[Any], loc: files.Loc, audience: ast.Scope
) -> Iterator[tuple[files.Loc, Any, ast.Scope]]:
    for i, step in enumerate(steps):
        here = loc + (i,)
        if not isinstance(step, dict):
            continue
        if "if" in step:
            yield here + ("if",), step["if"], audience
        if "wait_until" in step:
            yield here + ("wait_until",), step["wait_until"], audience
        branch = step.get("branch")
        if isinstance(branch, dict):
            if "if" in branch:
                yield here + ("branch", "if"), branch["if"], audience
            for arm in ("then", "else"):
                yield from _step_conditions(branch.get(arm) or [], here + ("branch", arm), audience)


def _clean(loc: tuple[Any, ...]) -> files.Loc:
    """Drop pydantic's union tags and rename aliased fields back to the file's spelling."""
    out: list[str | int] = []
    for part in loc:
        if part in spec.STEP_TAGS or part in (
            "ReEntryAfter",
            "HoldoutSpec",
            "str",
            "float",
            "literal['never','always']",
        ):
            continue
        if isinstance(part, str) and part.startswith(("literal[", "function-")):
            continue
        out.append({"if_": "if", "else_": "else"}.get(part, part) if isinstance(part, str) else part)
    return tuple(out)


STEP_KEYS = ("id", "if", "variants", "weights")  # keys of a message step that sit beside its `email:`, …
SHAPES = {  # what a mapping of this class looks like, for "expected a mapping" (scorecards)
    "Metric": "one metric by name, e.g. `metric: {active_days: {within: 30d}}`",
}


def _message(err: Any, loc: files.Loc) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "dict_type"):
        shape = SHAPES.get(str((err.get("ctx") or {}).get("class_name")), "")
        return f"expected a mapping (key: value), got {_shown(err.get('input'))}" + (
            f"; {shape}" if shape else ""
        )
    if kind == "tuple_type":
        return f"expected a pair of two values, e.g. [0, 100], got {_shown(err.get('input'))}"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _unknown_key(loc: files.Loc) -> str:
    """The message for an unknown key, with where it belongs when it is a known key in the wrong place."""
    key = loc[-1] if loc else None
    in_message = len(loc) >= 2 and loc[-2] in program.MESSAGE_KINDS
    if in_message and key in STEP_KEYS:
        return f"unknown key here: `{key}` belongs to the step, beside `{loc[-2]}:`"
    if in_message and key in ("to", "recipients"):
        return (
            "unknown key here: a contact journey messages its contact; an account journey picks whom it"
            " messages with a journey-level `recipients:` condition (e.g. `recipients: {contact.role: admin}`)"
        )
    condition = isinstance(key, str) and (
        key in (*COMBINATORS, *FORMS) or key.startswith(("account.", "contact."))
    )
    if len(loc) == 2 and loc[0] == "trigger" and condition:
        return f"unknown key: a condition that starts the journey goes under `trigger: {{condition: {{{key}: …}}}}`"
    return "unknown key (check the spelling; `engagement schema` lists every key)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
