"""Reading a request body at the door: the size cap before and while reading, bad JSON as 400,
wrong types as 422 naming the field."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status
from pydantic import BaseModel, ValidationError

from engagement import values

M = TypeVar("M", bound=BaseModel)


def too_large(limit: int, what: str) -> HTTPException:
    """A 413 that says what the limit is."""
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, detail=f"{what} is larger than the limit of {limit:,} bytes"
    )


async def read(request: Request, limit: int, what: str) -> bytes:
    """The raw body, refused with 413 as soon as it (or its gzip-decoded form) passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit, what)
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="Content-Length is not a number") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit, what)
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding == "gzip":
        return _gunzip(raw, limit, what)
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"Content-Encoding {encoding!r} is not supported (use gzip)",
    )


def _gunzip(raw: bytes, limit: int, what: str) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(raw, limit + 1)  # never inflate more than the cap allows
    except zlib.error as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"body is not valid gzip: {exc}") from exc
    if len(plain) > limit or inflater.unconsumed_tail:
        raise too_large(limit, f"{what} (after gzip decoding)")
    return plain


def check_fresh(signed_at: datetime, tolerance: timedelta, now: datetime, what: str, key: str) -> None:
    """403 for a request signed longer than `tolerance` (config `key`) ago or ahead: a replay, or a clock off."""
    if abs(now - signed_at) > tolerance:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"the {what} was signed at {signed_at.isoformat()}, more than {tolerance} from now "
            f"({now.isoformat()}): a replay, or a clock that is off ({key})",
        )


def parse_json(raw: bytes) -> Any:
    """The decoded JSON document, or 400 saying where it stops being JSON."""
    try:
        return values.loads(raw)
    except json.JSONDecodeError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from exc
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="body is not UTF-8 text") from exc
    except ValueError as exc:  # nested too deeply for the parser, a number of thousands of digits
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"body is not valid JSON: {exc}") from exc


def refuse_hostile(doc: Any, prefix: Sequence[str | int] = ()) -> None:
    """422 naming the first value no door accepts (NaN, Infinity, NUL, a lone surrogate, deep nesting)."""
    found = values.problem(doc, prefix)
    if found is not None:
        loc, message = found
        raise invalid_field(loc, message)


def _safe(part: Any) -> Any:
    """A string that JSON answers can carry: a lone surrogate shown as its escape."""
    return values.shown(part) if isinstance(part, str) else part


def _detail(loc: Sequence[str | int], msg: str, kind: str) -> dict[str, Any]:
    safe = [_safe(p) for p in loc]
    return {"field": field_name(safe), "loc": safe, "msg": _safe(msg), "type": kind}


def field_name(loc: Sequence[str | int]) -> str:
    """`("batch", 3, "traits", "email")` as `batch[3].traits.email`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def unprocessable(
    exc: ValidationError, prefix: Sequence[str | int] = (), drop: frozenset[str] = frozenset()
) -> HTTPException:
    """A 422 listing each wrong field by name (`drop` removes union tags pydantic puts in locations)."""
    problems = []
    for error in exc.errors():
        loc = [*prefix, *(p for p in error["loc"] if p not in drop)]
        problems.append(_detail(loc, error["msg"], error["type"]))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=problems)


def fields_wrong(problems: Sequence[tuple[Sequence[str | int], str, str]]) -> HTTPException:
    """A 422 listing each (location, message, error type) found wrong."""
    detail = [_detail(loc, msg, kind) for loc, msg, kind in problems]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


def invalid_field(loc: Sequence[str | int], message: str) -> HTTPException:
    """A 422 for one field found wrong after typing (e.g. a trait that maps onto a column)."""
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[_detail(loc, message, "value_error")])


def path_id(name: str, value: str) -> str:
    """`value` when it is an id by `values.id_problem`'s rule; 422 naming the path parameter otherwise."""
    wrong = values.id_problem(value)
    if wrong is not None:
        raise invalid_field(["path", name], wrong)
    return value


async def model(request: Request, kind: type[M], limit: int, what: str) -> M:
    """The body read under `limit`, decoded, refused if hostile, and parsed into `kind` (422 naming the field)."""
    doc = parse_json(await read(request, limit, what))
    refuse_hostile(doc)
    try:
        return kind.model_validate(doc)
    except ValidationError as exc:
        raise unprocessable(exc) from exc
