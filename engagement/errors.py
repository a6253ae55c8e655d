"""One error base for everything the engine reports to a user.

Every exception class in the package derives from EngagementError (tests/test_public_api.py). Builtins
are raised only for a caller's bug (TypeError, a naive datetime, an unreachable state) and by the parsing
helpers and pydantic validators behind the doors, which turn each ValueError into a ProblemsError,
ConfigError or HTTP 4xx before a user sees it.
"""

from __future__ import annotations

from dataclasses import dataclass


class EngagementError(Exception):
    """The engagement engine could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(EngagementError):
    """The configuration is invalid; fix the named key in config.toml or its env override."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a user file, located by file, line and field."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ProblemsError(EngagementError):
    """A user file has problems; each names its file, line and field."""

    def __init__(self, problems: list[Problem], summary: str | None = None) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems)
        super().__init__(f"{summary}\n{lines}" if summary else lines)


class JourneyError(ProblemsError):
    """A journey file is invalid; run `engagement validate` for every problem at once."""


class ImportFileError(ProblemsError):
    """An import file has invalid rows; nothing was imported."""


class ConditionError(EngagementError, ValueError):
    """A condition is invalid; the message names each problem by its path in the condition."""


class NotFoundError(EngagementError):
    """The named journey, step or contact does not exist."""


class TemplateRenderError(EngagementError):
    """A template failed to render for this recipient."""


class ScorecardError(ProblemsError):
    """A scorecard file is invalid; run `engagement validate` for every problem at once."""
