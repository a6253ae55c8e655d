"""Render one step of a journey for one contact, exactly as it would be sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engagement import errors, vocab
from engagement.conditions import pure
from engagement.config import Settings
from engagement.delivery import surveys, templates, unsubscribe
from engagement.delivery.templates import Renderer
from engagement.evaluation import variants
from engagement.evaluation.tick import context as eval_context
from engagement.journeys.catalog import Journey
from engagement.journeys.program import Email, InApp, Message, Notify, Survey
from engagement.store import schema
from engagement.store.database import Database


@dataclass
class Preview:
    """A rendered message and whether its step's `if` holds for this contact now."""

    kind: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    payload: dict[str, Any] | None = None
    guard_holds: bool | None = None
    variant: str | None = None  # the step's variant this contact gets (None: the step has no variants)


def render(
    settings: Settings,
    db: Database,
    renderer: Renderer,
    journey: Journey,
    step_id: str,
    contact_id: str,
    now: datetime,
) -> Preview:
    """Render `step_id` of `journey` for `contact_id`."""
    instr = journey.step(step_id)
    if not isinstance(instr, Message):
        steps = ", ".join(i.step_id for i in journey.program if isinstance(i, Message))
        raise errors.NotFoundError(f"journey {journey.id!r} has no message step {step_id!r} (steps: {steps})")
    with db.begin() as conn:
        contact = (
            conn.execute(select(schema.contacts).where(schema.contacts.c.id == contact_id)).mappings().first()
        )
        if contact is None:
            raise errors.NotFoundError(f"no contact {contact_id!r}")
        account = (
            conn.execute(select(schema.accounts).where(schema.accounts.c.id == contact["account_id"]))
            .mappings()
            .first()
        )
        subject_id = contact_id if journey.audience == "contact" else contact["account_id"]
        facts = pure.load_facts(conn, journey.audience, subject_id)
    guard = None
    if instr.guard is not None and facts is not None:
        guard = pure.evaluate(instr.guard, facts, eval_context(settings, journey, now))
    link = unsubscribe.url(settings.server.public_url, contact_id, settings.unsubscribe.secret)
    ctx = templates.message_context(
        contact=dict(contact),
        account=dict(account or {}),
        journey={"id": journey.id, "name": journey.spec.name},
        step_id=step_id,
        company=settings.company.model_dump(),
        unsubscribe_url=link,
    )
    shown = _render(settings, renderer, instr, ctx, now, variants.variant_for(journey, step_id, contact_id))
    shown.guard_holds = guard
    return shown


def _render(
    settings: Settings,
    renderer: Renderer,
    instr: Message,
    ctx: dict[str, Any],
    now: datetime,
    variant: str | None,
) -> Preview:
    match instr:
        case Survey() if instr.channel == vocab.Channel.EMAIL:  # links signed for a sample delivery, as sent
            email = surveys.email(settings, renderer, instr.message(variant), "preview", ctx, now)
            return Preview("email", email.subject, email.text, email.html, variant=variant)
        case Survey():
            asked = instr.message(variant)
            question = renderer.text(asked.question, ctx)
            survey: dict[str, Any] = {
                "title": question,
                "survey": surveys.nudge_fields(renderer, asked, ctx),
            }
            return Preview("in_app", question, json.dumps(survey, indent=2), payload=survey, variant=variant)
        case Email():
            chosen = instr.message(variant)
            email = renderer.email(chosen.template, chosen.subject, ctx)
            return Preview("email", email.subject, email.text, email.html, variant=variant)
        case InApp():
            spec = instr.message(variant)
            title = renderer.text(spec.title, ctx)
            payload = {
                "title": title,
                "body": renderer.text(spec.body, ctx),
                "cta": (
                    {"label": renderer.text(spec.cta.label, ctx), "url": renderer.text(spec.cta.url, ctx)}
                    if spec.cta
                    else None
                ),
            }
            return Preview("in_app", title, json.dumps(payload, indent=2), payload=payload, variant=variant)
        case Notify():
            target = settings.webhooks.named(instr.spec.webhook)
            render_text = renderer.slack_text if target is None or target.escape == "slack" else renderer.text
            payload = {"webhook": instr.spec.webhook, "text": render_text(instr.spec.text, ctx)}
            return Preview("notify", None, json.dumps(payload, indent=2), payload=payload, variant=variant)
