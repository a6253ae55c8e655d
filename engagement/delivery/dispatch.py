"""Send queued deliveries: judge, claim (queued → sending, committed), send, record (→ sent).

The ledger gives at-most-once: a delivery is committed `sending` before the provider call
and `sent` after it; a crash in between leaves it `sending`, which the next pass turns into
`in_doubt` once the lease has passed. Nothing in doubt is ever sent again automatically.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Integer, bindparam, case, func, or_, select, update

from engagement import errors, vocab
from engagement.config import Settings
from engagement.delivery import (
    ledger,
    pause,
    policy,
    senders,
    suppression,
    survey_asks,
    surveys,
    templates,
    unsubscribe,
    windows,
)
from engagement.delivery.message import (
    EmailProvider,
    InDoubt,
    OutboundEmail,
    OutboundWebhook,
    RateLimited,
    SendError,
    WebhookProvider,
)
from engagement.delivery.templates import Renderer
from engagement.journeys import program
from engagement.journeys.catalog import Catalog, Journey
from engagement.responses import inbox
from engagement.store import schema
from engagement.store.database import Database

d = schema.deliveries
COUNTED = (
    vocab.DeliveryStatus.SENDING,
    vocab.DeliveryStatus.SENT,
    vocab.DeliveryStatus.DELIVERED,
    vocab.DeliveryStatus.IN_DOUBT,
    vocab.DeliveryStatus.BOUNCED,
    vocab.DeliveryStatus.DEFERRED,
)  # emails that reached, or may have
CLAIM_ORDER = (d.c.due_at, d.c.priority.desc(), d.c.id)
RATE_LIMIT_HOLD = "held: provider rate limit"
WEBHOOK_HOLD = "held: webhook rate limit"
HOLD_CODES = {
    RATE_LIMIT_HOLD: vocab.HoldCode.PROVIDER_RATE_LIMIT,
    WEBHOOK_HOLD: vocab.HoldCode.WEBHOOK_RATE_LIMIT,
}
MAX_REASON = 1000


@dataclass
class Dispatched:
    """What one dispatch pass did, by outcome; `reasons` counts each (outcome, reason) that is not a send."""

    sent: int = 0
    held: int = 0
    suppressed: int = 0
    cancelled: int = 0
    skipped_late: int = 0
    skipped_recent: int = 0
    failed: int = 0
    in_doubt: int = 0
    rate_limited: int = 0
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    sent_ids: list[str] = field(default_factory=list)  # the deliveries this pass sent, in the order sent

    def add(self, outcome: str, reason: str | None) -> None:
        """Count one message that ended as `outcome` (a counter's name) for `reason`."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        if reason:
            self.reasons[(outcome, reason)] += 1


@dataclass
class Ports:
    """Where messages go out, and until when the email provider asked us to wait (on `clock`).

    `clock` is the engine's clock, which moves while ticks run even when every tick decides at one injected
    instant; a provider's pause is measured on it (default: the dispatch's lease clock).
    """

    email: EmailProvider
    webhooks: WebhookProvider
    email_paused_until: datetime | None = None
    clock: Callable[[], datetime] | None = None


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
    timer = ports.clock or lease_clock
    total = Dispatched()
    with db.begin() as conn:
        total.in_doubt += ledger.sweep(conn, lease_clock(), settings.limits.sending_lease)
    active = [j.id for j in catalog.journeys.values() if j.status == "active"]
    while active and not stopping():
        with db.begin() as conn:
            emails = _email_allowed(conn, ports, now, timer())
            judged, batch = _claim(
                db, conn, settings, catalog, active, now, total, emails=emails, claimed_at=lease_clock()
            )
        if not judged:  # a batch with nothing to send (all held or dropped) still moves the queue on
            break
        if batch:
            paused_before = ports.email_paused_until
            heard = _send(db, settings, catalog, renderer, ports, batch, now, total, timer)
            if heard is not None and ports.email_paused_until != paused_before:
                with db.begin() as conn:  # a 429: every other worker, and the next start, waits too
                    pause.hold(db, conn, ports.email.name, heard[0], heard[1])
    return total


def _email_allowed(conn: Connection, ports: Ports, now: datetime, at: datetime) -> bool:
    """Whether the email provider's pause (if any) has ended by `at` on the engine's clock.

    When it has, the emails it held are due again at `now`, even when every tick decides at one injected
    instant that the held `due_at` (now + the wait) would never reach.
    """
    stored = pause.stored(conn, ports.email.name)
    ports.email_paused_until = pause.merged(ports.email_paused_until, stored[0] if stored else None)
    if ports.email_paused_until is not None and ports.email_paused_until > at:
        return False
    if stored is not None:
        until, heard = stored
        conn.execute(
            update(d)
            .where(
                d.c.status == vocab.DeliveryStatus.QUEUED,
                d.c.channel == vocab.Channel.EMAIL,
                d.c.due_at > now,
                d.c.due_at <= now + (until - heard),  # held by this pause, not due later for their own sake
                d.c.hold_code == vocab.HoldCode.PROVIDER_RATE_LIMIT,
            )
            .values(due_at=now)
        )
        pause.clear(conn, ports.email.name, at)
    ports.email_paused_until = None
    return True


def due(journeys: Any, now: Any, limit: Any, *, emails: bool = True) -> Any:
    """The ids of the next due deliveries, in claim order (served by `ix_delivery_claim`)."""
    where = [d.c.status == vocab.DeliveryStatus.QUEUED, d.c.due_at <= now, d.c.journey_id.in_(journeys)]
    if not emails:
        where.append(d.c.channel != vocab.Channel.EMAIL)
    return select(d.c.id).where(*where).order_by(*CLAIM_ORDER).limit(limit)


@dataclass(frozen=True)
class Recipients:
    """What judging a batch knows of its recipients besides their rows: suppressed addresses, recent emails."""

    suppressed: frozenset[str]
    recent: Mapping[str, Sequence[datetime]]
    asked: frozenset[tuple[str, str]]  # (contact, survey kind) asked within surveys.min_interval


@dataclass(frozen=True)
class Judged:
    """One due delivery and the policy's verdict on it."""

    row: Any
    verdict: policy.Verdict

    @property
    def claimed(self) -> bool:
        """Whether it goes out in this batch (`sending`)."""
        return self.verdict.status == vocab.DeliveryStatus.SENDING


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
    params = {"journeys": journeys, "now": now, "limit": settings.limits.in_flight}
    rows = conn.execute(_claimable(emails), params).all()
    if not rows:
        return 0, []
    rules = {j: journey_rules(settings, catalog.journeys[j]) for j in {r.journey_id for r in rows}}
    known = _recipients(db, conn, rows, now, settings.surveys.min_interval)
    judged = _judge(rows, rules, known, now)
    _record(db, conn, judged, total, claimed_at)
    return len(rows), [j.row for j in judged if j.claimed]


@functools.cache  # built once: run at every claim, with the parameters `journeys`, `now` and `limit`
def _claimable(emails: bool) -> Any:
    """The next due deliveries, locked, with what judging them needs of their enrollment, contact and account."""
    e, c, a = schema.enrollments, schema.contacts, schema.accounts
    # Pick the ids on the delivery table alone, then join: a tick queues a whole cohort with one due_at, and
    # ordering it by priority scans the cohort on every claim; joined first, that scan cost 4x as much.
    journeys: Any = bindparam("journeys", expanding=True)
    ids = due(
        journeys, bindparam("now", type_=d.c.due_at.type), bindparam("limit", type_=Integer), emails=emails
    )
    return (
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
    )


def _recipients(
    db: Database, conn: Connection, rows: Sequence[Any], now: datetime, survey_interval: timedelta
) -> Recipients:
    """The suppressions, recent emails and recent surveys of the batch's recipients, read under each
    contact's cap lock."""
    emails = [r for r in rows if r.channel == vocab.Channel.EMAIL]
    asks = [r for r in rows if r.survey_kind]
    blocked = suppression.suppressed(conn, [r.contact_email for r in emails if r.contact_email])
    capped = sorted({r.contact_id for r in (*emails, *asks) if r.contact_id})
    # Workers judging one contact's emails (or surveys) at once would each miss the other's claim and together
    # pass the weekly cap: they take turns per contact, and each reads the claims committed before its turn.
    db.advisory_locks(conn, (f"engagement.cap:{contact}" for contact in capped))
    asked = survey_asks.recent(conn, asks, now, survey_interval)
    return Recipients(frozenset(blocked), recent_emails(conn, capped, now), frozenset(asked))


def _judge(
    rows: Sequence[Any], rules: Mapping[str, tuple[policy.Rules, str]], known: Recipients, now: datetime
) -> list[Judged]:
    """Each row's verdict, in claim order; an email claimed counts against its contact's cap for the rows after it."""
    recent = {contact: list(times) for contact, times in known.recent.items()}
    asked = set(known.asked)
    judged: list[Judged] = []
    for row in rows:
        candidate = policy.Candidate(
            channel=row.channel,
            due_at=row.due_at,
            enrollment_ended_as=row.enrollment_outcome,
            has_contact=row.contact_id is not None,
            contact_erased=row.contact_erased is not None,
            email=row.contact_email,
            suppressed=row.contact_email in known.suppressed,
            asked_recently=(row.contact_id, row.survey_kind) in asked,
        )
        verdict = policy.judge(
            candidate, _rules(rules[row.journey_id], row), now, recent.get(row.contact_id, [])
        )
        judged.append(Judged(row, verdict))
        if judged[-1].claimed and row.channel == vocab.Channel.EMAIL and row.contact_id:
            recent.setdefault(row.contact_id, []).append(now)
        if judged[-1].claimed and row.survey_kind:  # a second survey of this kind in the batch waits too
            asked.add((row.contact_id, row.survey_kind))
    return judged


def _record(
    db: Database, conn: Connection, judged: Sequence[Judged], total: Dispatched, claimed_at: datetime
) -> None:
    """The claim's one write: every verdict onto its row and into the pass's counts."""
    for j in judged:
        _count(total, j.verdict.status, j.verdict.reason)
    verdicts = [
        {
            "_id": j.row.id,
            "status": j.verdict.status,
            "status_reason": j.verdict.reason,
            "hold_code": j.verdict.hold,
            "due_at": j.verdict.due_at or j.row.due_at,
            "attempts": j.row.attempts + j.claimed,
        }
        for j in judged
    ]
    db.update_by_id(conn, d, verdicts, updated_at=claimed_at)  # the lease starts now, not at the tick's start


def _count(total: Dispatched, status: vocab.DeliveryStatus, reason: str | None) -> None:
    field = {
        vocab.DeliveryStatus.QUEUED: "held",
        vocab.DeliveryStatus.SUPPRESSED: "suppressed",
        vocab.DeliveryStatus.SKIPPED_LATE: "skipped_late",
        vocab.DeliveryStatus.SKIPPED_RECENT: "skipped_recent",
        vocab.DeliveryStatus.CANCELLED: "cancelled",
        vocab.DeliveryStatus.DROPPED: "cancelled",
    }.get(status)
    if field:
        total.add(field, reason if field == "held" else None)  # skips name their own due time: not a reason


def journey_rules(settings: Settings, journey: Journey) -> tuple[policy.Rules, str]:
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


def recent_emails(conn: Connection, contact_ids: Sequence[str], now: datetime) -> dict[str, list[datetime]]:
    """Each contact's emails of the last week (sent, or possibly sent)."""
    found: dict[str, list[datetime]] = {}
    unique = sorted(set(contact_ids))
    for start in range(0, len(unique), 500):
        chunk = {"ids": unique[start : start + 500], "since": now - timedelta(days=7)}
        for contact_id, status, at in conn.execute(_recent_emails(), chunk):
            if status in COUNTED:
                found.setdefault(contact_id, []).append(at)
    return found


@functools.cache  # built once: read for every batch judged
def _recent_emails() -> Any:
    # status is checked by recent_emails, not in SQL: given `status IN (...)`, SQLite walks the status index
    # over every sent delivery instead of the contact index over these contacts' few
    when = func.coalesce(d.c.sent_at, d.c.updated_at)
    return select(d.c.contact_id, d.c.status, when).where(
        d.c.channel == vocab.Channel.EMAIL,
        d.c.contact_id.in_(bindparam("ids", expanding=True)),
        when > bindparam("since", type_=d.c.sent_at.type),
    )


def _send(
    db: Database,
    settings: Settings,
    catalog: Catalog,
    renderer: Renderer,
    ports: Ports,
    batch: Sequence[Any],
    now: datetime,
    total: Dispatched,
    timer: Callable[[], datetime],
) -> tuple[datetime, datetime] | None:
    """Prepare and send one claimed batch, and record every outcome in one write.

    Any error while preparing one message (a template, a value that is not valid text, anything) fails
    that message alone. Returns the email pause heard in this batch as (until, heard at), if any.
    """
    with db.begin() as conn:
        contacts = _rows(conn, schema.contacts, {r.contact_id for r in batch if r.contact_id})
        account_ids = {c["account_id"] for c in contacts.values()}
        enrollment_accounts = dict(
            conn.execute(
                _by_ids(schema.enrollments, "account_id"), {"ids": [r.enrollment_id for r in batch]}
            ).all()
        )
        accounts = _rows(conn, schema.accounts, account_ids | {a for a in enrollment_accounts.values() if a})
    results: list[dict[str, Any]] = []
    nudges: list[dict[str, Any]] = []
    sends: list[tuple[dict[str, Any], str, Future[str | None]]] = []
    paused = senders.Pause(ports.email_paused_until, timer())
    held_webhooks: dict[str, datetime] = {}  # webhook name → until when it asked us to wait, in this pass
    with senders.Senders(ports.email, paused, timer) as sending:
        for row in batch:
            contact = contacts.get(row.contact_id) if row.contact_id else None
            account = accounts.get(
                contact["account_id"] if contact else enrollment_accounts.get(row.enrollment_id) or "", {}
            )
            outcome = _outcome(row, now)
            results.append(outcome)
            if row.channel == vocab.Channel.EMAIL and paused.active(timer()):
                _hold(outcome, now + paused.length, RATE_LIMIT_HOLD, total)
                continue
            try:
                message = _prepare(
                    settings, renderer, catalog.journeys[row.journey_id], row, contact, account, now
                )
            except Exception as exc:  # one message's bad template or bad data never stalls its batch
                _failed(outcome, exc, total)
                continue
            if isinstance(message, OutboundEmail):
                sends.append((outcome, message.subject, sending.submit(message)))
            elif isinstance(message, _Nudge):
                nudges.append(message.row)
                outcome.update(provider="inapp", provider_message_id=row.id, subject=message.title)
                total.sent += 1
            else:
                _notify(outcome, ports.webhooks, message, held_webhooks, now, total)
    for outcome, subject, future in sends:
        _settle(outcome, ports.email.name, subject, future, paused, now, total)
    ports.email_paused_until = paused.until
    with db.begin() as conn:
        if nudges:
            db.insert_ignore(conn, schema.nudges, nudges, ["delivery_id"])
        # A webhook event may already have moved a row on (SendGrid's `delivered` can beat this commit):
        # the send's outcome only replaces the states a send leaves behind.
        db.update_by_id(conn, d, results, updated_at=now, status=_unless_moved_on())
    total.sent_ids.extend(o["_id"] for o in results if o["status"] == vocab.DeliveryStatus.SENT)
    return (paused.until, paused.since) if paused.until is not None else None


def _outcome(row: Any, now: datetime) -> dict[str, Any]:
    """One row's outcome as a send leaves it, until something says otherwise."""
    return {
        "_id": row.id,
        "status": vocab.DeliveryStatus.SENT,
        "status_reason": None,
        "hold_code": None,
        "provider": None,
        "provider_message_id": None,
        "subject": None,
        "sent_at": now,
        "due_at": row.due_at,
    }


@dataclass(frozen=True)
class _Nudge:
    """A nudge row ready for the inbox, and its rendered title."""

    row: dict[str, Any]
    title: str


def _prepare(
    settings: Settings,
    renderer: Renderer,
    journey: Journey,
    row: Any,
    contact: dict[str, Any] | None,
    account: dict[str, Any],
    now: datetime,
) -> OutboundEmail | _Nudge | OutboundWebhook:
    """Everything one message needs before it leaves; raises whatever goes wrong on the way."""
    instr = journey.step(row.step_id)
    if instr is None:
        raise SendError(f"step {row.step_id!r} is no longer in journey {journey.id!r}", permanent=True)
    context = _context(settings, journey, row, contact, account)
    match instr:
        case program.Email() | program.Survey() if instr.channel == vocab.Channel.EMAIL:
            if contact is None:
                raise SendError("the email's contact is gone", permanent=True)
            email = _email(settings, renderer, instr, row, contact, context, now)
            _well_formed(
                "email",
                {
                    "subject": email.subject,
                    "recipient": (email.to, email.to_name),
                    "text part": email.text,
                    "HTML part": email.html,
                    "headers": email.headers,
                },
            )
            return email
        case program.InApp() | program.Survey():
            nudge = _nudge(renderer, instr, row, context, now)
            _well_formed("nudge", {"title": nudge["title"], "body": nudge["body"]})
            return _Nudge(nudge, nudge["title"])
        case program.Notify():
            hook = _webhook(settings, renderer, instr, row, context, journey)
            _well_formed("webhook message", {"payload": hook.payload})
            return hook
    raise SendError(f"step {row.step_id!r} of journey {journey.id!r} is no longer a message", permanent=True)


def _well_formed(what: str, parts: Mapping[str, Any]) -> None:
    """Refuse text that no provider can encode (a lone surrogate from a corrupt stored value)."""
    for name, value in parts.items():
        for text in _strings(value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = text[exc.start : exc.end]
                raise SendError(
                    f"the {what}'s {name} is not valid Unicode text ({bad!r} at character {exc.start}): "
                    "a stored value it shows is corrupt",
                    permanent=True,
                ) from exc


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _notify(
    outcome: dict[str, Any],
    provider: WebhookProvider,
    hook: OutboundWebhook,
    held: dict[str, datetime],
    now: datetime,
    total: Dispatched,
) -> None:
    """Post one webhook message, unless its webhook asked us to wait earlier in this pass."""
    if hook.name in held:
        _hold(outcome, held[hook.name], WEBHOOK_HOLD, total)
        return
    try:
        message_id = provider.send(hook)
    except RateLimited as exc:  # Slack's 429: held for its Retry-After, then sent once
        held[hook.name] = until = now + max(exc.wait, senders.RATE_LIMIT_FLOOR)
        _rate_limited(outcome, exc, until, total, WEBHOOK_HOLD)
    except Exception as exc:
        _failed(outcome, exc, total, called=True)
    else:
        outcome.update(provider=provider.name, provider_message_id=message_id)
        total.sent += 1


@functools.cache  # the same clause for every batch
def _unless_moved_on() -> ColumnElement[str]:
    # no IN (…): an executemany can't expand it
    left_by_a_send = or_(
        d.c.status == vocab.DeliveryStatus.SENDING, d.c.status == vocab.DeliveryStatus.IN_DOUBT
    )
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
        _rate_limited(outcome, exc, now + paused.length, total, RATE_LIMIT_HOLD)
    except Exception as exc:
        _failed(outcome, exc, total, called=True)
    else:
        if message_id is None:  # its turn came after a 429
            _hold(outcome, now + paused.length, RATE_LIMIT_HOLD, total)
        else:
            outcome.update(provider=provider, provider_message_id=message_id, subject=subject)
            total.sent += 1


def _hold(outcome: dict[str, Any], until: datetime, reason: str, total: Dispatched) -> None:
    total.add("held", reason)
    outcome.update(
        status=vocab.DeliveryStatus.QUEUED,
        status_reason=reason,
        hold_code=HOLD_CODES[reason],
        sent_at=None,
        due_at=until,
    )


def _rate_limited(
    outcome: dict[str, Any], exc: RateLimited, until: datetime, total: Dispatched, hold: str
) -> None:
    total.add("rate_limited", hold)
    outcome.update(
        status=vocab.DeliveryStatus.QUEUED,
        status_reason=_text(f"{hold} ({exc.reason})"),
        hold_code=HOLD_CODES[hold],
        sent_at=None,
        due_at=until,
    )


def _failed(outcome: dict[str, Any], exc: BaseException, total: Dispatched, *, called: bool = False) -> None:
    """A message that cannot go: `failed`, or `in_doubt` when the provider may have kept it.

    A provider (`called`) that raises something other than its contract's errors may have sent the message
    already, so that is in doubt too; an error before any provider was called is a plain failure.
    """
    expected = isinstance(exc, SendError | errors.TemplateRenderError)
    reason = str(exc) if expected else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, InDoubt) or (called and not expected):
        total.add("in_doubt", _text(reason))
        outcome.update(status=vocab.DeliveryStatus.IN_DOUBT, status_reason=_text(reason), sent_at=None)
    else:
        total.add("failed", _text(reason))
        outcome.update(status=vocab.DeliveryStatus.FAILED, status_reason=_text(reason), sent_at=None)


def _text(reason: str) -> str:
    """A reason that any database can store: at most 1000 characters, invalid text escaped."""
    return reason.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_REASON]


def _rows(conn: Connection, table: Any, ids: set[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    keys = sorted(ids)
    for start in range(0, len(keys), 500):
        chunk = {"ids": keys[start : start + 500]}
        found.update({row["id"]: dict(row) for row in conn.execute(_by_ids(table), chunk).mappings()})
    return found


@functools.cache  # built once per table and columns: read for every batch sent
def _by_ids(table: Any, *columns: str) -> Any:
    """`columns` (default: all) of the rows whose id is in the parameter `ids`."""
    picked = [table.c.id, *(table.c[name] for name in columns)] if columns else [table]
    return select(*picked).where(table.c.id.in_(bindparam("ids", expanding=True)))


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
    instr: program.Email | program.Survey,
    row: Any,
    contact: dict[str, Any],
    context: dict[str, Any],
    now: datetime,
) -> OutboundEmail:
    if isinstance(instr, program.Survey):
        rendered = surveys.email(settings, renderer, instr.message(row.variant), row.id, context, now)
    else:
        chosen = instr.message(row.variant)  # the delivery's variant, fixed when it was queued
        rendered = renderer.email(chosen.template, chosen.subject, context)
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
    renderer: Renderer,
    instr: program.InApp | program.Survey,
    row: Any,
    context: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    if isinstance(instr, program.Survey):
        asked = instr.message(row.variant)
        fields = surveys.nudge_fields(renderer, asked, context)
        return {**_nudge_keys(row, now, asked.expires), **fields}
    spec = instr.message(row.variant)
    label = url = None
    if spec.cta is not None:
        label, url = renderer.text(spec.cta.label, context), renderer.text(spec.cta.url, context)
        if not inbox.safe_link(url):  # a value put into the URL can still make it one
            raise errors.TemplateRenderError(f"cta.url renders to {url!r}: {inbox.LINK_RULE}")
    return {
        **_nudge_keys(row, now, spec.expires),
        "title": renderer.text(spec.title, context),
        "body": renderer.text(spec.body, context),
        "cta_label": label,
        "cta_url": url,
    }


def _nudge_keys(row: Any, now: datetime, expires: timedelta | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "delivery_id": row.id,
        "contact_id": row.contact_id,
        "journey_id": row.journey_id,
        "step_id": row.step_id,
        "created_at": now,
        "expires_at": now + expires if expires else None,
        "survey_kind": None,
        "survey_comment": None,
    }


def _webhook(
    settings: Settings,
    renderer: Renderer,
    instr: program.Notify,
    row: Any,
    context: dict[str, Any],
    journey: Journey,
) -> OutboundWebhook:
    target = settings.webhooks.named(instr.spec.webhook)
    if target is None:
        raise SendError(f"no webhook {instr.spec.webhook!r} in config", permanent=True)
    account = context["account"]
    payload = {
        "text": (renderer.slack_text if target.escape == "slack" else renderer.text)(
            instr.spec.text, context
        ),
        "journey": {"id": journey.id, "name": journey.spec.name},
        "step": row.step_id,
        "account": {"id": account.get("id"), "name": account.get("name"), "plan": account.get("plan")},
        "contact_id": row.contact_id,
    }
    return OutboundWebhook(
        row.id, instr.spec.webhook, target.url, payload, dict(target.headers), target.timeout_seconds
    )
