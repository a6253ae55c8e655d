"""Load scorecard files (YAML or TOML) from `health.dir`, every problem as file:line: field: message."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from engagement.conditions import ast
from engagement.conditions.parse import Parser
from engagement.config import Settings
from engagement.errors import Problem, ScorecardError
from engagement.health import spec
from engagement.journeys import catalog, files

HEALTH_FORMS = (ast.Health, ast.HealthScore, ast.HealthChange)


@dataclass(frozen=True)
class Scorecard:
    """A checked scorecard: its spec, its file and its `applies_to` condition (None: every account)."""

    spec: spec.ScorecardSpec
    source: Path
    applies_to: ast.Condition | None
    version: str

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass
class Cards:
    """Every scorecard found, in the order they are tried (`order`, then id), and every problem."""

    cards: list[Scorecard]
    problems: list[Problem]

    def raise_problems(self) -> None:
        """Raise ScorecardError if any file had a problem."""
        if self.problems:
            raise ScorecardError(self.problems, f"{len(self.problems)} problem(s) in scorecard files:")

    def get(self, card_id: str) -> Scorecard | None:
        """The scorecard with this id, if any."""
        return next((c for c in self.cards if c.id == card_id), None)

    @property
    def signature(self) -> str:
        """What the cards are, for caches and journey watermarks: changes when any file does."""
        return ",".join(f"{c.id}:{c.version}" for c in self.cards)


def load(settings: Settings, targets: list[Path] | None = None) -> Cards:
    """Load every scorecard under `targets` (default `health.dir`; a missing default folder means none)."""
    if targets is None:
        folder = settings.path(settings.health.dir)
        targets = [folder] if folder.exists() else []
    problems: list[Problem] = []
    found: list[Scorecard] = []
    for target in targets:
        if not target.exists():
            problems.append(Problem(str(target), None, "", "no such file or folder"))
    seen: dict[str, Path] = {}
    for path in files.journey_paths(targets):
        card, trouble = _load_one(path)
        problems += trouble
        if card is None:
            continue
        if card.id in seen:
            problems.append(
                Problem(
                    str(path), None, "id", f"duplicate scorecard id {card.id!r} (also in {seen[card.id]})"
                )
            )
            continue
        seen[card.id] = path
        found.append(card)
    found.sort(key=lambda c: (c.spec.order, c.id))
    return Cards(found, problems)


def _load_one(path: Path) -> tuple[Scorecard | None, list[Problem]]:
    source = files.read(path)
    if isinstance(source, Problem):
        return None, [source]
    if not isinstance(source.data, dict):
        return None, [
            Problem(str(path), 1, "", "a scorecard file is a mapping of keys (id, bands, measures…)")
        ]

    def problem(loc: files.Loc, message: str) -> Problem:
        return Problem(str(path), source.line_of(loc), files.format_loc(loc), message)

    problems: list[Problem] = []
    parsed: spec.ScorecardSpec | None = None
    try:
        parsed = spec.ScorecardSpec.model_validate(source.data)
    except ValidationError as exc:
        for loc, msg in catalog.schema_errors(exc):
            clean = tuple(
                part for part in loc if not (isinstance(part, str) and part.startswith("constrained-"))
            )
            problems.append(
                problem(clean, msg.replace("`engagement schema`", "`engagement schema --kind scorecard`"))
            )
    condition: ast.Condition | None = None
    raw = source.data.get("applies_to")
    if raw is not None:
        parser = Parser("account")
        condition = parser.parse(raw)
        problems += [problem(("applies_to", *sub), msg) for sub, msg in parser.problems]
        if condition is not None and any(isinstance(n, HEALTH_FORMS) for n in ast.walk(condition)):
            problems.append(
                problem(("applies_to",), "applies_to cannot read health itself (it picks the scorecard)")
            )
    if problems or parsed is None:
        return None, problems
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Scorecard(parsed, path, condition, version), []
