"""Segment-compatible intake: `POST /v1/identify|track|group|page|screen|batch` with a write key.

Segment's SDKs (and RudderStack's) can point their `host` here: they post to `/v1/batch` with the
write key as the HTTP Basic username. Limits are Segment's: 32 KB a call, 500 KB a batch.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from engagement import values
from engagement.api import auth, body
from engagement.api.deps import Services, services
from engagement.ingest import intake, segment

router = APIRouter(prefix="/v1", tags=["intake (Segment-compatible)"])
Svc = Annotated[Services, Depends(services)]
Located = list[tuple[list[str | int], segment.Call]]
# a call's size as its SDK would send it; ASCII-only output, so its length is its size in bytes
COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _documented(model: type[BaseModel] | None) -> dict[str, Any]:
    """The request body as /docs shows it (the routes read the raw body themselves, to cap its size)."""
    if model is None:
        singles = [_schema(m) for m in (segment.Identify, segment.Track, segment.Group, segment.Page)]
        schema: dict[str, Any] = {
            "type": "object",
            "required": ["batch"],
            "properties": {
                "batch": {"type": "array", "items": {"oneOf": singles}},
                "writeKey": {"type": "string"},
            },
        }
    else:
        schema = _schema(model)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def _document(request: Request, svc: Services, limit: int, what: str) -> tuple[bytes, dict[str, Any]]:
    """The body as a JSON object, once the caller has shown a write key (Basic username, else `writeKey`)."""
    header_key = auth.basic_username(request)
    if header_key is not None:
        auth.check_write_key(svc, header_key)
    raw = await body.read(request, limit, what)
    doc = body.parse_json(raw)
    if not isinstance(doc, dict):
        raise body.invalid_field([], "the body must be a JSON object")
    if header_key is None:
        key = doc.get("writeKey")
        readable = isinstance(key, str) and values.text_problem(key) is None
        auth.check_write_key(svc, key if readable else None)
    body.refuse_hostile(doc)
    return raw, doc


def _apply(svc: Services, calls: Located) -> dict[str, Any]:
    """One transaction per request: all of it is written or none."""
    now = svc.clock.now()
    try:
        with svc.db.begin() as conn:
            written = intake.write(svc.db, conn, calls, svc.settings, now)
    except segment.InvalidCall as exc:
        raise body.invalid_field(exc.loc, exc.message) from exc
    if written.events:
        svc.responses_arrived()
    return {"success": True, **written.__dict__}


async def _single(request: Request, svc: Services, model: type[segment.Call], kind: str) -> dict[str, Any]:
    limit = svc.settings.api.max_call_bytes
    _, doc = await _document(request, svc, limit, f"a {kind} call")
    try:
        call = model.model_validate({**doc, "type": doc.get("type", kind)})
    except ValidationError as exc:
        raise body.unprocessable(exc) from exc
    return await run_in_threadpool(_apply, svc, [([], call)])


@router.post("/identify", openapi_extra=_documented(segment.Identify))
async def identify(request: Request, svc: Svc) -> dict[str, Any]:
    """Create or update the contact `userId`; email, firstName, lastName, role, timezone, createdAt fill columns."""
    return await _single(request, svc, segment.Identify, "identify")


@router.post("/track", openapi_extra=_documented(segment.Track))
async def track(request: Request, svc: Svc) -> dict[str, Any]:
    """Store an event (de-duplicated on `messageId`) and the milestone it may reach."""
    return await _single(request, svc, segment.Track, "track")


@router.post("/group", openapi_extra=_documented(segment.Group))
async def group(request: Request, svc: Svc) -> dict[str, Any]:
    """Create or update the account `groupId` (name, plan, mrr, createdAt, …) and put `userId` in it."""
    return await _single(request, svc, segment.Group, "group")


@router.post("/page", openapi_extra=_documented(segment.Page))
async def page(request: Request, svc: Svc) -> dict[str, Any]:
    """Store a `page_viewed` event."""
    return await _single(request, svc, segment.Page, "page")


@router.post("/screen", openapi_extra=_documented(segment.Page))
async def screen(request: Request, svc: Svc) -> dict[str, Any]:
    """Store a `screen_viewed` event."""
    return await _single(request, svc, segment.Page, "screen")


@router.post("/batch", openapi_extra=_documented(None))
async def batch(request: Request, svc: Svc) -> dict[str, Any]:
    """Many calls in one request, applied in order, all or none (what Segment's SDKs send)."""
    limits = svc.settings.api
    raw, doc = await _document(request, svc, limits.max_batch_bytes, "a batch")
    items = doc.get("batch")
    if len(raw) > limits.max_call_bytes and isinstance(items, list):
        for i, item in enumerate(items):
            if len(COMPACT.encode(item)) > limits.max_call_bytes:
                raise HTTPException(
                    status.HTTP_413_CONTENT_TOO_LARGE,
                    detail=f"batch[{i}] is larger than the limit of {limits.max_call_bytes:,} bytes a call",
                )
    try:
        parsed = segment.Batch.model_validate(doc)
    except ValidationError as exc:
        raise body.unprocessable(exc, drop=segment.TYPES) from exc
    located: Located = [(["batch", i], call) for i, call in enumerate(parsed.batch)]
    return await run_in_threadpool(_apply, svc, located)
