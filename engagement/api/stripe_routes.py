"""`POST /webhooks/stripe`: Stripe's signed subscription events, verified over the raw body before parsing."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from engagement.api import body
from engagement.api.deps import Services, services
from engagement.ingest import stripe_events, subscriptions

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
Svc = Annotated[Services, Depends(services)]
DOCUMENTED = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": stripe_events.Event.model_json_schema()}},
    }
}


def _take(svc: Services, change: stripe_events.Change) -> str:
    """One transaction: the event is recorded (and applied) whole, or not at all."""
    now = svc.clock.now()
    with svc.db.begin() as conn:
        return subscriptions.take(svc.db, conn, change, now, svc.settings.touch)


@router.post("/webhooks/stripe", openapi_extra=DOCUMENTED)
async def stripe_webhook(request: Request, svc: Svc) -> dict[str, Any]:
    """Revenue rows from `customer.subscription.*` events (signed; `webhooks.stripe.secret`); others ignored."""
    config = svc.settings.webhooks.stripe
    if not config.secret:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the Stripe webhook is not configured: set webhooks.stripe.secret "
            "(ENGAGEMENT_WEBHOOKS__STRIPE__SECRET) to the endpoint's signing secret (whsec_…)",
        )
    header = request.headers.get(stripe_events.SIGNATURE_HEADER, "").strip()
    signed_at = stripe_events.signed_at(header)
    if not header or signed_at is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"unsigned request: a {stripe_events.SIGNATURE_HEADER} header with t= and v1= is required",
        )
    raw = await body.read(request, config.max_body_bytes, "a Stripe event")
    try:
        genuine = stripe_events.verify(raw, header, config.secret)
    except UnicodeDecodeError as exc:  # Stripe signs text: a body that is not UTF-8 is not its
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="body is not UTF-8 text") from exc
    if not genuine:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="no v1 signature matches the body and timestamp under webhooks.stripe.secret",
        )
    body.check_fresh(signed_at, config.tolerance, svc.clock.now(), "event", "webhooks.stripe.tolerance")
    doc = body.parse_json(raw)
    body.refuse_hostile(doc)
    try:
        event = stripe_events.parse(doc)
        change = stripe_events.interpret(event)
    except stripe_events.BadEvent as exc:
        raise body.fields_wrong(exc.problems) from exc
    if change is None:  # answered 2xx all the same: Stripe retries anything else for days
        return {"id": event.id, "type": event.type, "outcome": "ignored"}
    outcome = await run_in_threadpool(_take, svc, change)
    if outcome == subscriptions.PENDING:
        log.info(
            "Stripe webhook: %s for unknown account %r kept until it appears", event.id, change.account_id
        )
    return {"id": event.id, "type": event.type, "outcome": outcome, "mrr": change.mrr}
