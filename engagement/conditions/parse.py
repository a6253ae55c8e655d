"""Parse a condition as written in a journey file into the AST, collecting every problem."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from engagement import errors, vocab
from engagement.conditions import ast
from engagement.durations import parse_duration

ATTR_OPS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "exists", "contains")
BOUND_OPS = ("eq", "ne", "lt", "lte", "gt", "gte")
COMBINATORS = ("all", "any", "not")
# conditions inside all/any/not: far beyond any real journey, well inside what SQL engines parse
MAX_DEPTH = 20
FORMS = (
    "milestone",
    "event_count",
    "days_since",
    "days_until",
    "score",
    "account_score",
    "health",
    "health_score",
    "health_change",
    "survey",
)

Path = tuple[str | int, ...]


@dataclass
class Parser:
    """Parses conditions for one audience; problems are (sub-path, message) pairs."""

    audience: ast.Scope = "contact"
    problems: list[tuple[Path, str]] = field(default_factory=list)

    def parse(self, raw: Any, path: Path = (), depth: int = 1) -> ast.Condition | None:
        """Parse `raw`; return None (and record problems) when it is malformed."""
        if not isinstance(raw, dict) or not raw:
            return self._fail(path, f"a condition is a mapping such as {{milestone: NAME}}, got {raw!r}")
        if depth > MAX_DEPTH:
            return self._fail(path, f"conditions nest at most {MAX_DEPTH} levels deep (all, any, not)")
        keys = list(raw)
        parts: list[ast.Condition | None] = []
        if "within" in raw and "milestone" not in raw:  # a problem, but the other keys are still checked
            hint = "`within` goes with `milestone` here; for events use event_count"
            parts.append(self._fail(path + ("within",), hint))
        for key in keys:
            if key == "within":
                continue
            sub = path + (key,)
            value = raw[key]
            if key == "milestone":
                parts.append(self._milestone(value, raw.get("within"), path))
            elif key in ("all", "any"):
                parts.append(self._group(key, value, sub, depth))
            elif key == "not":
                inner = self.parse(value, sub, depth + 1)
                parts.append(ast.Not(inner) if inner else None)
            elif key == "event_count":
                parts.append(self._event_count(value, sub))
            elif key in ("days_since", "days_until"):
                parts.append(self._days(key, value, sub))
            elif key in ("score", "account_score"):
                scope: ast.Scope = (
                    "account" if key == "account_score" or self.audience == "account" else "contact"
                )
                bounds = self._bounds(value, sub)
                parts.append(ast.Score(scope, bounds) if bounds else None)
            elif key == "health":
                parts.append(self._health(value, sub))
            elif key == "health_score":
                bounds = self._bounds(value, sub)
                parts.append(ast.HealthScore(bounds) if bounds else None)
            elif key == "health_change":
                parts.append(self._health_change(value, sub))
            elif key == "survey":
                parts.append(self._survey(value, sub))
            elif isinstance(key, str) and key.startswith(("contact.", "account.")):
                parts.append(self._attr(key, value, sub))
            else:
                known = ", ".join(COMBINATORS + FORMS + ("contact.FIELD", "account.FIELD"))
                parts.append(self._fail(sub, f"unknown condition {key!r}; use one of {known}"))
        if any(p is None for p in parts):
            return None
        good = [p for p in parts if p is not None]
        return good[0] if len(good) == 1 else ast.All(tuple(good))

    def _fail(self, path: Path, message: str) -> ast.Condition | None:
        """Record a problem; always None (typed so `return self._fail(...)` fits any parser)."""
        self.problems.append((path, message))
        return None

    def _group(self, key: str, value: Any, path: Path, depth: int) -> ast.Condition | None:
        if not isinstance(value, list) or not value:
            return self._fail(path, f"`{key}` takes a non-empty list of conditions")
        items = [self.parse(item, path + (i,), depth + 1) for i, item in enumerate(value)]
        if any(i is None for i in items):
            return None
        parts = tuple(i for i in items if i is not None)
        return ast.All(parts) if key == "all" else ast.AnyOf(parts)

    def _milestone(self, name: Any, within: Any, path: Path) -> ast.Condition | None:
        if not isinstance(name, str) or not name:
            return self._fail(path + ("milestone",), "milestone takes an event name")
        window = self._duration(within, path + ("within",)) if within is not None else None
        if within is not None and window is None:
            return None
        return ast.Milestone(name, window)

    def _event_count(self, value: Any, path: Path) -> ast.Condition | None:
        if not isinstance(value, dict):
            return self._fail(path, "event_count takes {event: NAME, within: 14d, lt: 3}")
        rest = {k: v for k, v in value.items() if k not in ("event", "within")}
        event = value.get("event")
        if not isinstance(event, str) or not event:
            return self._fail(path + ("event",), "event_count needs `event: NAME`")
        within = value.get("within")
        window = self._duration(within, path + ("within",)) if within is not None else None
        bounds = self._bounds(rest, path, integer=True)
        if bounds is None or (within is not None and window is None):
            return None
        return ast.EventCount(event, window, bounds)

    def _days(self, key: str, value: Any, path: Path) -> ast.Condition | None:
        if not isinstance(value, dict):
            return self._fail(path, f"{key} takes {{field: contact.created_at, gte: 7}}")
        name = value.get("field")
        if name not in ast.TIME_FIELDS:
            fields = ", ".join(ast.TIME_FIELDS)
            return self._fail(path + ("field",), f"unknown date field {name!r}; use one of {fields}")
        if self.audience == "account" and name.startswith("contact."):
            return self._fail(path + ("field",), "an account journey cannot use contact fields here")
        bounds = self._bounds({k: v for k, v in value.items() if k != "field"}, path, integer=True)
        if bounds is None:
            return None
        return ast.Days("since" if key == "days_since" else "until", name, bounds)

    def _survey(self, value: Any, path: Path) -> ast.Condition | None:
        if not isinstance(value, dict):
            return self._fail(path, "survey takes {kind: nps, score: {lte: 6}, within: 90d}")
        if self.audience == "account":
            return self._fail(
                path, "survey reads a contact's answers; in an account journey use it in `recipients`"
            )
        kinds = tuple(vocab.SurveyKind)
        ok = True
        for key in value:
            if key not in ("kind", "score", "within"):
                ok = bool(self._fail(path + (key,), f"unknown key {key!r}; survey takes kind, score, within"))
        kind = value.get("kind")
        if kind not in kinds:
            ok = bool(self._fail(path + ("kind",), f"kind is one of {', '.join(kinds)}, got {kind!r}"))
        within = value.get("within")
        window = self._duration(within, path + ("within",)) if within is not None else None
        score = value.get("score")
        bounds = self._bounds(score, path + ("score",), integer=True) if score is not None else ()
        if not ok or bounds is None or (within is not None and window is None):
            return None
        return ast.Survey(str(kind), window, bounds)

    def _health(self, value: Any, path: Path) -> ast.Condition | None:
        if value not in ast.BANDS:
            return self._fail(path, f"health is one of {', '.join(ast.BANDS)}, got {value!r}")
        return ast.Health(self.audience, value)

    def _health_change(self, value: Any, path: Path) -> ast.Condition | None:
        if not isinstance(value, dict) or "within" not in value:
            return self._fail(path, "health_change takes {within: 14d, lte: -15}")
        window = self._duration(value["within"], path + ("within",))
        if window is not None and window < timedelta(days=1):
            return self._fail(
                path + ("within",), "health_change compares with a daily snapshot: within is at least 1d"
            )
        bounds = self._bounds({k: v for k, v in value.items() if k != "within"}, path)
        if window is None or bounds is None:
            return None
        return ast.HealthChange(window, bounds)

    def _bounds(self, value: Any, path: Path, *, integer: bool = False) -> tuple[ast.Bound, ...] | None:
        if not isinstance(value, dict) or not value:
            self._fail(path, f"give at least one comparison: {', '.join(BOUND_OPS)}")
            return None
        bounds: list[ast.Bound] = []
        ok = True
        for op, number in value.items():
            if op not in BOUND_OPS:
                ok = bool(self._fail(path + (op,), f"unknown comparison {op!r}; use {', '.join(BOUND_OPS)}"))
            elif isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
                ok = bool(self._fail(path + (op,), f"{op} takes a finite number, got {number!r}"))
            elif integer and number != int(number):
                ok = bool(self._fail(path + (op,), f"{op} takes a whole number, got {number!r}"))
            else:
                bounds.append((op, float(number)))
        return tuple(bounds) if ok else None

    def _duration(self, value: Any, path: Path) -> Any:
        try:
            return parse_duration(value)
        except ValueError as exc:
            return self._fail(path, str(exc))
        except OverflowError:
            return self._fail(path, f"duration {value!r} is too long")

    def _attr(self, key: str, value: Any, path: Path) -> ast.Condition | None:
        scope_name, _, rest = key.partition(".")
        scope: ast.Scope = "contact" if scope_name == "contact" else "account"
        if scope == "contact" and self.audience == "account":
            return self._fail(
                path,
                "an account journey's conditions use account.*; pick contacts with `recipients`",
            )
        parts = tuple(rest.split("."))
        fields = ast.CONTACT_FIELDS if scope == "contact" else ast.ACCOUNT_FIELDS
        if parts[0] == "traits":
            if len(parts) < 2 or not all(parts[1:]):
                return self._fail(path, f"name a trait, e.g. {scope}.traits.seats")
            kind: Any = "trait"
        elif len(parts) == 1 and parts[0] in fields:
            kind = fields[parts[0]]
        else:
            return self._fail(
                path, f"unknown field {key!r}; {scope} fields: {', '.join(fields)}, traits.NAME"
            )
        ops = value if isinstance(value, dict) else {"eq": value}
        if not ops:
            return self._fail(path, "give a value or an operator such as {in: [a, b]}")
        items: list[ast.Condition] = []
        for op, operand in ops.items():
            checked = self._operand(op, operand, kind, path + ((op,) if isinstance(value, dict) else ()))
            if checked is _BAD:
                continue
            items.append(ast.Attr(scope, parts, op, checked))
        if len(items) != len(ops):
            return None
        return items[0] if len(items) == 1 else ast.All(tuple(items))

    def _operand(self, op: Any, operand: Any, kind: Any, path: Path) -> Any:
        if op not in ATTR_OPS:
            self._fail(path, f"unknown operator {op!r}; use {', '.join(ATTR_OPS)}")
            return _BAD
        if op == "exists":
            if not isinstance(operand, bool):
                self._fail(path, "exists takes true or false")
                return _BAD
            return operand
        if op in ("in", "not_in"):
            if not isinstance(operand, list) or not operand:
                self._fail(path, f"{op} takes a non-empty list")
                return _BAD
            values = [self._scalar(v, kind, op, path) for v in operand]
            return _BAD if any(v is _BAD for v in values) else tuple(values)
        if op == "contains":
            if not isinstance(operand, str) or kind not in (str, "trait"):
                self._fail(path, "contains takes text and works on text fields")
                return _BAD
            return operand
        value = self._scalar(operand, kind, op, path)
        if value is not _BAD and op in ("lt", "lte", "gt", "gte") and isinstance(value, str | bool):
            self._fail(path, f"{op} compares numbers or dates, got {operand!r}")
            return _BAD
        return value

    def _scalar(self, value: Any, kind: Any, op: str, path: Path) -> Any:
        if isinstance(value, dict | list) or value is None:
            self._fail(path, f"{op} takes a plain value, got {value!r}")
            return _BAD
        if kind is str:
            if not isinstance(value, str):
                self._fail(path, f"this field is text; write {str(value)!r} in quotes")
                return _BAD
            return value
        if isinstance(value, float) and not math.isfinite(value):  # SQLite binds NaN as NULL
            self._fail(path, f"{op} takes a finite number, got {value!r}")
            return _BAD
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self._fail(path, f"this field is a number, got {value!r}")
                return _BAD
            return float(value)
        if kind in ("datetime", "date"):
            return self._when(value, kind, path)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def _when(self, value: Any, kind: str, path: Path) -> Any:
        try:
            if kind == "date":
                return value if isinstance(value, date) else date.fromisoformat(str(value))
            if isinstance(value, datetime):
                return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            if isinstance(value, date):
                return datetime(value.year, value.month, value.day, tzinfo=UTC)
            parsed = datetime.fromisoformat(str(value))
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except ValueError:
            self._fail(path, f"not an ISO date: {value!r}")
            return _BAD


_BAD = object()


def parse(raw: Any, audience: ast.Scope = "contact") -> ast.Condition:
    """Parse a condition or raise ConditionError listing every problem (for code and tests)."""
    parser = Parser(audience)
    cond = parser.parse(raw)
    if cond is None:
        raise errors.ConditionError(
            "; ".join(f"{'.'.join(map(str, p)) or 'condition'}: {m}" for p, m in parser.problems)
        )
    return cond
