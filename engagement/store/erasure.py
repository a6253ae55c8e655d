"""Erase a contact's personal data everywhere, keeping what aggregates and opt-outs need.

What stays: the contact row as an anonymous tombstone (`erased_at`, account, role, creation
time), event names and times, deliveries' statuses, responses' kinds and times, enrollments,
scores, and the suppression of the address as a hash only, so the address stays unsubscribed
and every count in reports stays right. What goes: name, address, traits, event properties,
rendered subjects and addresses of deliveries and the subjects of test sends, nudge texts, responses'
provider payloads, and the rendered copies in the file outbox. Active enrollments end (`end_reason = 'erased'`) and
the dispatcher never messages an erased contact.

On SQLite the erasure then checkpoints and truncates the write-ahead log (which still held the pages
as they were) and, with secure_delete on every connection, leaves no freed copy in the file. On
PostgreSQL the rows no longer hold the data; dead row versions stay on disk until VACUUM reuses their
space, and WAL archives and backups are beyond the engine's reach. Provider events that arrive later
for an erased contact are recorded without personal data (email_events).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import case, func, literal, or_, select, update

from engagement import errors, vocab
from engagement.delivery import suppression
from engagement.store import schema
from engagement.store.database import Database


class ContactNotFound(errors.EngagementError):
    """There is no contact with this id; check the id (`engagement scores --contact ID` shows one)."""


@dataclass
class Erased:
    """How many rows of each kind were scrubbed."""

    contact_id: str
    events: int = 0
    deliveries: int = 0
    nudges: int = 0
    responses: int = 0
    enrollments_ended: int = 0
    outbox_files: int = 0
    suppressed: bool = False
    log_truncated: bool = True  # SQLite's write-ahead log (earlier page versions) checkpointed and emptied


def erase(db: Database, contact_id: str, now: datetime, *, outbox: Path | None = None) -> Erased:
    """Erase one contact (again is harmless); `outbox` is the file outbox whose copies to delete."""
    c, e, d, n, r, en = (
        schema.contacts,
        schema.events,
        schema.deliveries,
        schema.nudges,
        schema.responses,
        schema.enrollments,
    )
    done = Erased(contact_id)
    with db.begin() as conn:
        contact = conn.execute(select(c.c.email).where(c.c.id == contact_id)).one_or_none()
        if contact is None:
            raise ContactNotFound(f"no contact {contact_id!r}")
        if contact.email:
            suppression.add(db, conn, contact.email, "manual", "erasure", now)  # keeps an earlier reason
            conn.execute(
                update(schema.suppressions)
                .where(schema.suppressions.c.email_hash == suppression.address_hash(contact.email))
                .values(email=None)
            )
            done.suppressed = True
        conn.execute(
            update(c)
            .where(c.c.id == contact_id)
            .values(
                email=None,
                first_name="",
                last_name="",
                traits={},
                unsubscribed_at=func.coalesce(c.c.unsubscribed_at, literal(now, c.c.unsubscribed_at.type)),
                erased_at=func.coalesce(c.c.erased_at, literal(now, c.c.erased_at.type)),
                updated_at=now,
            )
        )
        done.events = conn.execute(
            update(e).where(e.c.contact_id == contact_id).values(properties={})
        ).rowcount
        delivery_ids = list(conn.execute(select(d.c.id).where(d.c.contact_id == contact_id)).scalars())
        done.deliveries = conn.execute(
            update(d)
            .where(d.c.contact_id == contact_id)
            .values(to_address=None, subject=None, status_reason=None, updated_at=now)
        ).rowcount
        done.nudges = conn.execute(
            update(n)
            .where(n.c.contact_id == contact_id)
            .values(
                title="",
                body="",
                cta_label=None,
                cta_url=None,
                expires_at=case(
                    (or_(n.c.expires_at.is_(None), n.c.expires_at > now), literal(now, n.c.expires_at.type)),
                    else_=n.c.expires_at,
                ),
            )
        ).rowcount
        done.responses = conn.execute(update(r).where(r.c.contact_id == contact_id).values(data={})).rowcount
        tests = (
            schema.test_sends
        )  # a test send's subject was rendered for the contact; its address is a tester's
        test_ids = list(conn.execute(select(tests.c.id).where(tests.c.contact_id == contact_id)).scalars())
        conn.execute(update(tests).where(tests.c.contact_id == contact_id).values(subject=None))
        answers = schema.survey_answers
        conn.execute(
            update(answers).where(answers.c.contact_id == contact_id).values(comment=None)
        )  # their words
        done.enrollments_ended = conn.execute(
            update(en)
            .where(
                en.c.audience == "contact",
                en.c.subject_id == contact_id,
                en.c.state == vocab.EnrollmentState.ACTIVE,
            )
            .values(
                state=vocab.EnrollmentState.ENDED,
                outcome=vocab.EnrollmentOutcome.EXITED,
                end_reason="erased",
                ended_at=now,
                next_action_at=None,
            )
        ).rowcount
    done.log_truncated = db.forget_old_pages()
    if outbox is not None:
        for delivery_id in [*delivery_ids, *test_ids]:
            for copy in (outbox / f"{delivery_id}.eml", outbox / "notify" / f"{delivery_id}.json"):
                if copy.exists():
                    copy.unlink()
                    done.outbox_files += 1
    return done
