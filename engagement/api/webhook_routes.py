"""`POST /webhooks/sendgrid`: SendGrid's signed Event Webhook, verified over the raw body before parsing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from engagement.api import body
from engagement.api.deps import Services, services
from engagement.delivery import sendgrid_events as sg
from engagement.responses import email_events

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
Svc = Annotated[Services, Depends(services)]
DOCUMENTED = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": sg.SendgridEvent.model_json_schema()}}
        },
    }
}


def _apply(svc: Services, events: list[email_events.EmailEvent], ignored: int) -> email_events.Recorded:
    """One transaction per request: all of it is written or none."""
    with svc.db.begin() as conn:
        recorded = email_events.record(svc.db, conn, events, svc.clock.now(), ignored=ignored)
    if recorded.recorded:
        svc.responses_arrived()
    return recorded


def _check_fresh(timestamp: str, tolerance: timedelta, now: datetime) -> None:
    """403 for a batch signed longer than `tolerance` ago (or ahead): a replay, or a clock that is off."""
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"{sg.TIMESTAMP_HEADER} is not a Unix time in seconds"
        ) from exc
    body.check_fresh(signed_at, tolerance, now, "batch", "webhooks.sendgrid.tolerance")


@router.post("/webhooks/sendgrid", openapi_extra=DOCUMENTED)
async def sendgrid_webhook(request: Request, svc: Svc) -> dict[str, Any]:
    """Record delivery, engagement and unsubscribe events (ECDSA-signed; `webhooks.sendgrid.public_key`)."""
    config = svc.settings.webhooks.sendgrid
    if not config.public_key:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the SendGrid webhook is not configured: set webhooks.sendgrid.public_key "
            "(ENGAGEMENT_WEBHOOKS__SENDGRID__PUBLIC_KEY) to the Signed Event Webhook's verification key",
        )
    signature = request.headers.get(sg.SIGNATURE_HEADER, "").strip()
    timestamp = request.headers.get(sg.TIMESTAMP_HEADER, "").strip()
    if not signature or not timestamp:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"unsigned request: the {sg.SIGNATURE_HEADER} and {sg.TIMESTAMP_HEADER} headers are required",
        )
    raw = await body.read(request, config.max_body_bytes, "a SendGrid event batch")
    try:
        genuine = sg.verify(config.public_key, raw, signature, timestamp)
    except sg.BadKey as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from exc
    if not genuine:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="the signature does not match the body and timestamp under webhooks.sendgrid.public_key",
        )
    _check_fresh(timestamp, config.tolerance, svc.clock.now())
    try:
        parsed = sg.parse(raw)
    except sg.BadBatch as exc:
        raise body.fields_wrong(exc.problems) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"body is not valid JSON: {exc}") from exc
    if parsed.skipped:
        log.warning(
            "SendGrid webhook: skipped %d event(s) with a value out of range: %s",
            len(parsed.skipped),
            "; ".join(f"{body.field_name(loc)}: {message}" for loc, message in parsed.skipped[:5]),
        )
    meant = [sg.interpret(event) for event in parsed.events]
    events = [e for e in meant if e is not None]
    recorded = await run_in_threadpool(_apply, svc, events, len(meant) - len(events))
    if recorded.unknown:
        log.info(
            "SendGrid webhook: %d of %d events are for messages we did not send", recorded.unknown, len(meant)
        )
    counts = recorded.counts()
    if parsed.skipped:
        counts["received"] += len(parsed.skipped)
        counts["invalid"] = len(parsed.skipped)
    return counts
