"""Send queued deliveries: judge, claim (queued → sending, committed), send, record (→ sent).

The ledger gives at-most-once: a delivery is committed `sending` before the provider call
and `sent` after it; a crash in between leaves it `sending`, which the next pass turns into
`in_doubt` once the lease has passed. Nothing in doubt is ever sent again automatically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, bindparam, case, func, or_, select

from engagement import errors, inbox, suppression, templates, unsubscribe
from engagement.config import Settings
from engagement.delivery import ledger, pause, policy, senders, windows
from engagement.delivery.message import (
    EmailProvider,
    InDoubt,
    OutboundEmail,
    OutboundWebhook,
    RateLimited,
    SendError,
    WebhookProvider,
)
from engagement.journeys.catalog import Catalog, Journey
from engagement.journeys.program import Instr
from engagement.store import schema
from engagement.store.database import Database
from engagement.templates import Renderer

d = schema.deliveries
COUNTED = (
    "sending",
    "sent",
    "delivered",
    "in_doubt",
    "bounced",
    "deferred",
)  # emails that reached, or may have
CLAIM_ORDER = (d.c.due_at, d.c.priority.desc(), d.c.id)


@dataclass
class Dispatched:
    """What one dispatch pass did, by outcome."""

    sent: int = 0
    held: int = 0
    suppressed: int = 0
    cancelled: int = 0
    skipped_late: int = 0
    failed: int = 0
    in_doubt: int = 0
    rate_limited: int = 0


@dataclass
class Ports:
    """Where messages go out, and until when the email provider asked us to wait."""

    email: EmailProvider
    webhooks: WebhookProvider
    email_paused_until: datetime | None = None


def never() -> bool:
    """The default `stopping`: dispatch runs until nothing due is left."""
    return False


def dispatch(
    db: Database,
    settings: Settings,
    catalog: Catalog,
    renderer: Renderer,
    ports: Ports,
    now: datetime,
    *,
    stopping: Callable[[], bool] = never,
    clock: Callable[[], datetime] | None = None,
) -> Dispatched:
    """Send every queued delivery that is due, `limits.in_flight` at a time, until `stopping()`.

    Decisions are made at `now`, the tick's instant; leases are stamped and checked with `clock()`, the
    time at that moment, so a tick that runs longer than the lease never lets another worker's sweep
    take its live batch for a dead one.
    """
    lease_clock = clock or (lambda: now)
    total = Dispatched()
    with db.begin() as conn:
        total.in_doubt += ledger.sweep(conn, lease_clock(), settings.limits.sending_lease)
    active = [j.id for j in catalog.journeys.values() if j.status == "active"]
    while active and not stopping():
        with db.begin() as conn:
            ports.email_paused_until = pause.merged(
                ports.email_paused_until, pause.until(conn, ports.email.name)
            )
            emails = ports.email_paused_until is None or ports.email_paused_until <= now
            judged, batch = _claim(
                db, conn, settings, catalog, active, now, total, emails=emails, claimed_at=lease_clock()
            )
        if not judged:  # a batch with nothing to send (all held or dropped) still moves the queue on
            break
        if batch:
            paused_before = ports.email_paused_until
            _send(db, settings, catalog, renderer, ports, batch, now, total)
            if ports.email_paused_until is not None and ports.email_paused_until != paused_before:
                with db.begin() as conn:  # a 429: every other worker, and the next start, waits too
                    pause.hold(db, conn, ports.email.name, ports.email_paused_until, lease_clock())
    return total


def due(journeys: list[str], now: datetime, limit: int, *, emails: bool = True) -> Any:
    """The ids of the next due deliveries, in claim order (served by `ix_delivery_claim`)."""
    where = [d.c.status == "queued", d.c.due_at <= now, d.c.journey_id.in_(journeys)]
    if not emails:
        where.append(d.c.channel != "email")
    return select(d.c.id).where(*where).order_by(*CLAIM_ORDER).limit(limit)


def _claim(
    db: Database,
    conn: Connection,
    settings: Settings,
    catalog: Catalog,
    journeys: list[str],
    now: datetime,
    total: Dispatched,
    *,
    emails: bool,
    claimed_at: datetime,
) -> tuple[int, list[Any]]:
    """Judge up to `limits.in_flight` due deliveries; mark the ones to send `sending`.

    Returns how many were judged and the claimed ones. Every judged row leaves the due queue (a held
    row's new `due_at` is in the future), so claiming again cannot see it twice.
    """
    e, c, a = schema.enrollments, schema.contacts, schema.accounts
    # Pick the ids on the delivery table alone, then join: a tick queues a whole cohort with one due_at, and
    # ordering it by priority scans the cohort on every claim; joined first, that scan cost 4x as much.
    ids = due(journeys, now, settings.limits.in_flight, emails=emails)
    rows = conn.execute(
        select(
            d,
            e.c.outcome.label("enrollment_outcome"),
            c.c.email.label("contact_email"),
            c.c.erased_at.label("contact_erased"),
            c.c.timezone.label("contact_timezone"),
            a.c.traits.label("account_traits"),
        )
        .select_from(
            d.join(e, e.c.id == d.c.enrollment_id)
            .outerjoin(c, c.c.id == d.c.contact_id)
            .outerjoin(a, a.c.id == e.c.account_id)
        )
        .where(d.c.id.in_(ids.with_for_update(skip_locked=True)))
        .order_by(*CLAIM_ORDER)
    ).all()
    if not rows:
        return 0, []
    addresses = [r.contact_email for r in rows if r.channel == "email" and r.contact_email]
    blocked = suppression.suppressed(conn, addresses)
    capped = sorted({r.contact_id for r in rows if r.channel == "email" and r.contact_id})
    # Workers judging one contact's emails at once would each miss the other's claim and together pass the
    # weekly cap: they take turns per contact, and each reads the claims committed before its turn.
    db.advisory_locks(conn, (f"engagement.cap:{contact}" for contact in capped))
    recent = _recent_emails(conn, capped, now)
    verdicts: list[dict[str, Any]] = []
    claimed: list[Any] = []
    journey_rules = {j: _journey_rules(settings, catalog.journeys[j]) for j in {r.journey_id for r in rows}}
    for row in rows:
        candidate = policy.Candidate(
            channel=row.channel,
            due_at=row.due_at,
            enrollment_ended_as=row.enrollment_outcome,
            has_contact=row.contact_id is not None,
            contact_erased=row.contact_erased is not None,
            email=row.contact_email,
            suppressed=row.contact_email in blocked,
        )
        verdict = policy.judge(
            candidate,
            _rules(journey_rules[row.journey_id], row),
            now,
            recent.get(row.contact_id, []),
        )
        sending = verdict.status == "sending"
        if sending:
            claimed.append(row)
            if row.channel == "email" and row.contact_id:
                recent.setdefault(row.contact_id, []).append(now)
        _count(total, verdict.status)
        verdicts.append(
            {
                "_id": row.id,
                "status": verdict.status,
                "status_reason": verdict.reason,
                "due_at": verdict.due_at or row.due_at,
                "attempts": row.attempts + sending,
            }
        )
    db.update_by_id(conn, d, verdicts, updated_at=claimed_at)  # the lease starts now, not at the tick's start
    return len(rows), claimed


def _count(total: Dispatched, status: str) -> None:
    field = {
        "queued": "held",
        "suppressed": "suppressed",
        "skipped_late": "skipped_late",
        "cancelled": "cancelled",
        "dropped": "cancelled",
    }.get(status)
    if field:
        setattr(total, field, getattr(total, field) + 1)


def _journey_rules(settings: Settings, journey: Journey) -> tuple[policy.Rules, str]:
    """A journey's rules with the zone still to resolve per recipient, and its zone setting."""
    spec = journey.spec
    rules = policy.Rules(
        max_lateness=spec.max_lateness or settings.scheduler.max_lateness,
        window=windows.Window.from_spec(spec.send_window) if spec.send_window else None,
        zone=ZoneInfo("UTC"),  # resolved per recipient in _rules
        weekly_cap=settings.limits.emails_per_contact_per_week,
    )
    return rules, spec.send_window.timezone if spec.send_window else "contact"


def _rules(journey: tuple[policy.Rules, str], row: Any) -> policy.Rules:
    rules, setting = journey
    account_zone = (row.account_traits or {}).get("timezone")
    zone = windows.resolve_zone(
        setting, row.contact_timezone, account_zone if isinstance(account_zone, str) else None
    )
    return dataclasses.replace(rules, zone=zone)


def _recent_emails(conn: Connection, contact_ids: Sequence[str], now: datetime) -> dict[str, list[datetime]]:
    """Each contact's emails of the last week (sent, or possibly sent)."""
    found: dict[str, list[datetime]] = {}
    when = func.coalesce(d.c.sent_at, d.c.updated_at)
    unique = sorted(set(contact_ids))
    for start in range(0, len(unique), 500):
        # status is checked here, not in SQL: given `status IN (...)`, SQLite walks the status index over
        # every sent delivery instead of the contact index over these contacts' few
        stmt = select(d.c.contact_id, d.c.status, when).where(
            d.c.channel == "email",
            d.c.contact_id.in_(unique[start : start + 500]),
            when > now - timedelta(days=7),
        )
        for contact_id, status, at in conn.execute(stmt):
            if status in COUNTED:
                found.setdefault(contact_id, []).append(at)
    return found


def _send(
    db: Database,
    settings: Settings,
    catalog: Catalog,
    renderer: Renderer,
    ports: Ports,
    batch: Sequence[Any],
    now: datetime,
    total: Dispatched,
) -> None:
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
    sends: list[tuple[dict[str, Any], str, Future[str | None]]] = []
    paused = senders.Pause(ports.email_paused_until)
    with senders.Senders(ports.email, paused, now) as sending:
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
                "due_at": row.due_at,
            }
            results.append(outcome)
            if row.channel == "email" and paused.active(now):
                _hold(outcome, paused)
                continue
            try:
                if instr is None:
                    raise SendError(
                        f"step {row.step_id!r} is no longer in journey {journey.id!r}", permanent=True
                    )
                context = _context(settings, journey, row, contact, account)
                if instr.kind == "email":
                    assert contact is not None
                    email = _email(settings, renderer, instr, row, contact, context, now)
                    sends.append((outcome, email.subject, sending.submit(email)))
                    continue
                if instr.kind == "in_app":
                    nudges.append(_nudge(renderer, instr, row, context, now))
                    outcome.update(
                        provider="inapp",
                        provider_message_id=row.id,
                        subject=renderer.text(instr.spec.title, context),
                    )
                else:
                    hook = _webhook(settings, renderer, instr, row, context, journey)
                    outcome.update(
                        provider=ports.webhooks.name, provider_message_id=ports.webhooks.send(hook)
                    )
                total.sent += 1
            except RateLimited as exc:
                _rate_limited(outcome, exc, paused.extend(exc, now), total)
            except (SendError, errors.TemplateRenderError) as exc:
                _failed(outcome, exc, total)
    for outcome, subject, future in sends:
        _settle(outcome, ports.email.name, subject, future, paused, now, total)
    ports.email_paused_until = paused.until
    with db.begin() as conn:
        if nudges:
            db.insert_ignore(conn, schema.nudges, nudges, ["delivery_id"])
        # A webhook event may already have moved a row on (SendGrid's `delivered` can beat this commit):
        # the send's outcome only replaces the states a send leaves behind.
        db.update_by_id(conn, d, results, updated_at=now, status=_unless_moved_on())


def _unless_moved_on() -> ColumnElement[str]:
    # no IN (…): an executemany can't expand it
    left_by_a_send = or_(d.c.status == "sending", d.c.status == "in_doubt")
    return case((left_by_a_send, bindparam("status")), else_=d.c.status)


def _settle(
    outcome: dict[str, Any],
    provider: str,
    subject: str,
    future: Future[str | None],
    paused: senders.Pause,
    now: datetime,
    total: Dispatched,
) -> None:
    """Record how one email's send ended."""
    try:
        message_id = future.result()
    except RateLimited as exc:
        _rate_limited(outcome, exc, paused.extend(exc, now), total)
    except (SendError, errors.TemplateRenderError) as exc:
        _failed(outcome, exc, total)
    else:
        if message_id is None:  # its turn came after a 429
            _hold(outcome, paused)
        else:
            outcome.update(provider=provider, provider_message_id=message_id, subject=subject)
            total.sent += 1


def _hold(outcome: dict[str, Any], paused: senders.Pause) -> None:
    assert paused.until is not None
    outcome.update(
        status="queued", status_reason="held: provider rate limit", sent_at=None, due_at=paused.until
    )


def _rate_limited(outcome: dict[str, Any], exc: RateLimited, until: datetime, total: Dispatched) -> None:
    total.rate_limited += 1
    outcome.update(
        status="queued",
        status_reason=f"held: provider rate limit ({exc.reason})"[:1000],
        sent_at=None,
        due_at=until,
    )


def _failed(outcome: dict[str, Any], exc: SendError | errors.TemplateRenderError, total: Dispatched) -> None:
    if isinstance(exc, InDoubt):
        total.in_doubt += 1
        outcome.update(status="in_doubt", status_reason=str(exc)[:1000], sent_at=None)
    else:
        total.failed += 1
        outcome.update(status="failed", status_reason=str(exc)[:1000], sent_at=None)


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
    row: Any,
    contact: dict[str, Any] | None,
    account: dict[str, Any],
) -> dict[str, Any]:
    link = (
        unsubscribe.url(settings.server.public_url, contact["id"], settings.unsubscribe.secret, row.id)
        if contact
        else ""
    )
    return templates.message_context(
        contact=contact,
        account=account,
        journey={"id": journey.id, "name": journey.spec.name},
        step_id=row.step_id,
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
    label = url = None
    if spec.cta is not None:
        label, url = renderer.text(spec.cta.label, context), renderer.text(spec.cta.url, context)
        if not inbox.safe_link(url):  # a value put into the URL can still make it one
            raise errors.TemplateRenderError(f"cta.url renders to {url!r}: {inbox.LINK_RULE}")
    return {
        "id": row.id,
        "delivery_id": row.id,
        "contact_id": row.contact_id,
        "journey_id": row.journey_id,
        "step_id": row.step_id,
        "title": renderer.text(spec.title, context),
        "body": renderer.text(spec.body, context),
        "cta_label": label,
        "cta_url": url,
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
