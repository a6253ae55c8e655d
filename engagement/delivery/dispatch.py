"""Send queued deliveries: check, claim (queued → sending), render, send, record (→ sent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from engagement import errors, suppression, templates, unsubscribe
from engagement.config import Settings
from engagement.delivery.message import (
    EmailProvider,
    OutboundEmail,
    OutboundWebhook,
    SendError,
    WebhookProvider,
)
from engagement.journeys.catalog import Catalog, Journey
from engagement.journeys.program import Instr
from engagement.store import schema
from engagement.store.database import Database
from engagement.templates import Renderer

d = schema.deliveries


@dataclass
class Dispatched:
    """What one dispatch pass did, by outcome."""

    sent: int = 0
    suppressed: int = 0
    cancelled: int = 0
    failed: int = 0
    retry: int = 0


@dataclass
class Ports:
    """Where messages go out."""

    email: EmailProvider
    webhooks: WebhookProvider


def dispatch(
    db: Database, settings: Settings, catalog: Catalog, renderer: Renderer, ports: Ports, now: datetime
) -> Dispatched:
    """Send every queued delivery that is due, batch by batch."""
    total = Dispatched()
    active = [j.id for j in catalog.journeys.values() if j.status == "active"]
    if not active:
        return total
    retrying: set[str] = set()  # a transient failure waits for the next tick, not the next batch
    while True:
        with db.begin() as conn:
            batch = _claim(db, conn, active, now, settings.limits.in_flight, total, retrying)
        if not batch:
            return total
        retrying |= _send(db, settings, catalog, renderer, ports, batch, now, total)


def _claim(
    db: Database,
    conn: Connection,
    journeys: list[str],
    now: datetime,
    limit: int,
    total: Dispatched,
    skip: set[str],
) -> list[Any]:
    """Drop what must not go, then mark up to `limit` deliveries `sending` (committed before any send)."""
    e = schema.enrollments
    c = schema.contacts
    rows = conn.execute(
        select(
            d,
            e.c.state.label("enrollment_state"),
            e.c.outcome.label("enrollment_outcome"),
            c.c.email.label("contact_email"),
            c.c.erased_at.label("contact_erased"),
        )
        .select_from(d.join(e, e.c.id == d.c.enrollment_id).outerjoin(c, c.c.id == d.c.contact_id))
        .where(d.c.status == "queued", d.c.due_at <= now, d.c.journey_id.in_(journeys), d.c.id.not_in(skip))
        .order_by(d.c.due_at, d.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=d)
    ).all()
    if not rows:
        return []
    blocked = suppression.suppressed(
        conn, [r.contact_email for r in rows if r.channel == "email" and r.contact_email]
    )
    verdicts: list[dict[str, Any]] = []
    claimed = []
    for row in rows:
        status, reason = "sending", None
        if row.enrollment_state == "ended" and row.enrollment_outcome in ("converted", "exited"):
            status, reason = "cancelled", f"enrollment {row.enrollment_outcome} before sending"
        elif row.contact_id is not None and (row.contact_erased is not None):
            status, reason = "dropped", "contact erased"
        elif row.channel == "email" and not row.contact_email:
            status, reason = "dropped", "contact has no email address"
        elif row.channel == "email" and row.contact_email in blocked:
            status, reason = "suppressed", "address is on the suppression list"
        verdicts.append(
            {
                "_id": row.id,
                "status": status,
                "status_reason": reason,
                "attempts": row.attempts + (status == "sending"),
            }
        )
        if status == "sending":
            claimed.append(row)
        elif status == "suppressed":
            total.suppressed += 1
        else:
            total.cancelled += 1
    db.update_by_id(conn, d, verdicts, updated_at=now)
    return claimed


def _send(
    db: Database,
    settings: Settings,
    catalog: Catalog,
    renderer: Renderer,
    ports: Ports,
    batch: Sequence[Any],
    now: datetime,
    total: Dispatched,
) -> set[str]:
    """Send a claimed batch; return the ids left queued for a retry."""
    with db.begin() as conn:
        contacts = _rows(conn, schema.contacts, {r.contact_id for r in batch if r.contact_id})
        account_ids = {c["account_id"] for c in contacts.values()}
        enrollment_accounts = dict(
            conn.execute(
                select(schema.enrollments.c.id, schema.enrollments.c.account_id).where(
                    schema.enrollments.c.id.in_([r.enrollment_id for r in batch])
                )
            ).all()
        )
        accounts = _rows(conn, schema.accounts, account_ids | {a for a in enrollment_accounts.values() if a})
    results: list[dict[str, Any]] = []
    nudges: list[dict[str, Any]] = []
    for row in batch:
        journey = catalog.journeys[row.journey_id]
        instr = journey.step(row.step_id)
        contact = contacts.get(row.contact_id) if row.contact_id else None
        account = accounts.get(
            contact["account_id"] if contact else enrollment_accounts.get(row.enrollment_id) or "", {}
        )
        outcome: dict[str, Any] = {
            "_id": row.id,
            "status": "sent",
            "status_reason": None,
            "provider": None,
            "provider_message_id": None,
            "subject": None,
            "sent_at": now,
        }
        try:
            if instr is None:
                raise SendError(
                    f"step {row.step_id!r} is no longer in journey {journey.id!r}", permanent=True
                )
            context = _context(settings, journey, row.step_id, contact, account)
            if instr.kind == "email":
                assert contact is not None
                email = _email(settings, renderer, instr, row, contact, context, now)
                outcome.update(
                    provider=ports.email.name,
                    provider_message_id=ports.email.send(email),
                    subject=email.subject,
                )
            elif instr.kind == "in_app":
                nudges.append(_nudge(renderer, instr, row, context, now))
                outcome.update(
                    provider="inapp",
                    provider_message_id=row.id,
                    subject=renderer.text(instr.spec.title, context),
                )
            else:
                hook = _webhook(settings, renderer, instr, row, context, journey)
                outcome.update(provider=ports.webhooks.name, provider_message_id=ports.webhooks.send(hook))
            total.sent += 1
        except (SendError, errors.TemplateRenderError) as exc:
            permanent = not isinstance(exc, SendError) or exc.permanent
            outcome.update(
                status="failed" if permanent else "queued", status_reason=str(exc)[:1000], sent_at=None
            )
            if permanent:
                total.failed += 1
            else:
                total.retry += 1
        results.append(outcome)
    with db.begin() as conn:
        if nudges:
            db.insert_ignore(conn, schema.nudges, nudges, ["delivery_id"])
        db.update_by_id(conn, d, results, updated_at=now)
    return {r["_id"] for r in results if r["status"] == "queued"}


def _rows(conn: Connection, table: Any, ids: set[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    keys = sorted(ids)
    for start in range(0, len(keys), 500):
        stmt = select(table).where(table.c.id.in_(keys[start : start + 500]))
        found.update({row["id"]: dict(row) for row in conn.execute(stmt).mappings()})
    return found


def _context(
    settings: Settings,
    journey: Journey,
    step_id: str,
    contact: dict[str, Any] | None,
    account: dict[str, Any],
) -> dict[str, Any]:
    link = (
        unsubscribe.url(settings.server.public_url, contact["id"], settings.unsubscribe.secret)
        if contact
        else ""
    )
    return templates.message_context(
        contact=contact,
        account=account,
        journey={"id": journey.id, "name": journey.spec.name},
        step_id=step_id,
        company=settings.company.model_dump(),
        unsubscribe_url=link,
    )


def _email(
    settings: Settings,
    renderer: Renderer,
    instr: Instr,
    row: Any,
    contact: dict[str, Any],
    context: dict[str, Any],
    now: datetime,
) -> OutboundEmail:
    rendered = renderer.email(instr.spec.template, instr.spec.subject, context)
    name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
    return OutboundEmail(
        delivery_id=row.id,
        to=contact["email"],
        to_name=name,
        sender=settings.email.from_,
        reply_to=settings.email.reply_to,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        sent_at=now,
        headers={
            **unsubscribe.headers(context["unsubscribe_url"], settings.unsubscribe.mailto),
            "X-Engagement-Delivery": row.id,
        },
        categories=(row.journey_id, f"{row.journey_id}/{row.step_id}"),
        custom_args={"delivery_id": row.id, "journey_id": row.journey_id, "step_id": row.step_id},
    )


def _nudge(
    renderer: Renderer, instr: Instr, row: Any, context: dict[str, Any], now: datetime
) -> dict[str, Any]:
    spec = instr.spec
    return {
        "id": row.id,
        "delivery_id": row.id,
        "contact_id": row.contact_id,
        "journey_id": row.journey_id,
        "step_id": row.step_id,
        "title": renderer.text(spec.title, context),
        "body": renderer.text(spec.body, context),
        "cta_label": spec.cta.label if spec.cta else None,
        "cta_url": spec.cta.url if spec.cta else None,
        "created_at": now,
        "expires_at": now + spec.expires if spec.expires else None,
    }


def _webhook(
    settings: Settings, renderer: Renderer, instr: Instr, row: Any, context: dict[str, Any], journey: Journey
) -> OutboundWebhook:
    target = settings.webhooks.named(instr.spec.webhook)
    if target is None:
        raise SendError(f"no webhook {instr.spec.webhook!r} in config", permanent=True)
    account = context["account"]
    payload = {
        "text": renderer.text(instr.spec.text, context),
        "journey": {"id": journey.id, "name": journey.spec.name},
        "step": row.step_id,
        "account": {"id": account.get("id"), "name": account.get("name"), "plan": account.get("plan")},
        "contact_id": row.contact_id,
    }
    return OutboundWebhook(
        row.id, instr.spec.webhook, target.url, payload, dict(target.headers), target.timeout_seconds
    )
