"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; pass UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the same text SQLAlchemy's DATETIME stores, in one step per value (bulk writes bind many)."""
        composed = super().bind_processor(dialect)
        if dialect.name != "sqlite" or composed is None:
            return composed
        utc = UTC

        def process(value: Any) -> Any:
            if type(value) is datetime and value.tzinfo is not None:
                if value.tzinfo is not utc:
                    value = value.astimezone(utc)
                return value.replace(tzinfo=None).isoformat(" ", "microseconds")
            return composed(value)  # None, naive (refused) or anything unusual: the general path

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDoc = JSON().with_variant(JSONB(), "postgresql")


# what json.dumps(value, allow_nan=False) and json.dumps(value, ensure_ascii=False) make, made once: with
# any argument but the defaults json.dumps builds a new encoder for every call (every stored JSON value)
_STRICT = json.JSONEncoder(allow_nan=False)
_UNICODE = json.JSONEncoder(ensure_ascii=False)


def dumps(value: Any) -> str:
    """The JSON text of a JSON column's value: ValueError for NaN, Infinity or a lone surrogate, which
    are not JSON (SQLite's JSON functions then fail on the row, PostgreSQL refuses it), so none is stored."""
    text = _STRICT.encode(value)
    if "\\ud" in text:  # astral characters are written as surrogate pairs; a lone surrogate is not text
        try:
            _UNICODE.encode(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"a lone surrogate cannot be stored in a JSON column: {exc.reason}") from exc
    return text


BigId = BigInteger().with_variant(Integer(), "sqlite")


SCALARS = frozenset({str, int, float, bool, type(None)})
STR = frozenset({str})


def json_safe(value: Any) -> Any:
    """Return `value` with datetimes and dates turned into ISO strings, for JSON columns."""
    if isinstance(value, dict):
        if STR.issuperset(map(type, value)) and SCALARS.issuperset(map(type, value.values())):
            return dict(value)  # flat and plain already (the usual event properties): nothing to convert
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
