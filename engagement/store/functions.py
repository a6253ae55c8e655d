"""SQL functions written differently per dialect: SQLAlchemy's `@compiles` pattern, in one place.

A function is a `FunctionElement` subclass (its name, type and cache key as SQLAlchemy wants them) and
`render(cls, sqlite=..., postgresql=...)`: each rendering takes the element and its arguments, already
compiled to SQL text, and returns the SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

Rendering = Callable[[Any, list[str]], str]  # (the element, its arguments as SQL) -> SQL


def render(
    element: type[FunctionElement[Any]], *, default: Rendering | None = None, **dialects: Rendering
) -> None:
    """Compile `element` with `dialects[name]` on each named dialect (and `default` on any other)."""
    for dialect, rendering in dialects.items():
        compiles(element, dialect)(_compiler(rendering))
    if default is not None:
        compiles(element)(_compiler(default))


def _compiler(rendering: Rendering) -> Callable[..., str]:
    def compile_element(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
        return rendering(element, [compiler.process(clause, **kw) for clause in element.clauses])

    return compile_element


def joined(args: list[str]) -> str:
    """The arguments as a function call's argument list."""
    return ", ".join(args)
