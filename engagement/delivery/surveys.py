"""A survey step's message: the email with one signed link per score, or the in-app question."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engagement import vocab
from engagement.config import Settings
from engagement.delivery import survey_links
from engagement.delivery.templates import RenderedEmail, Renderer
from engagement.journeys.spec import SurveySpec

TEMPLATE = "_survey"  # delivery/email_layout/_survey.{html,txt}.j2; a templates folder may override it
LABELS = {
    vocab.SurveyKind.NPS: ("Not at all likely", "Extremely likely"),
    vocab.SurveyKind.CSAT: ("Very unsatisfied", "Very satisfied"),
}


def survey_context(
    settings: Settings,
    renderer: Renderer,
    spec: SurveySpec,
    delivery_id: str,
    context: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The `survey` variable the survey templates see: the question and a link per score."""
    expires = now + timedelta(days=settings.surveys.link_days)
    token = survey_links.make_token(delivery_id, settings.unsubscribe.secret, expires)
    low, high = LABELS[vocab.SurveyKind(spec.kind)]
    links = survey_links.score_urls(settings.server.public_url, token, spec.kind)
    return {
        "kind": spec.kind,
        "question": renderer.text(spec.question, context),
        "comment": renderer.text(spec.comment, context) if spec.comment else "",
        "links": [{"score": score, "url": url} for score, url in links],
        "top": links[-1][0],
        "low_label": low,
        "high_label": high,
    }


def email(
    settings: Settings,
    renderer: Renderer,
    spec: SurveySpec,
    delivery_id: str,
    context: dict[str, Any],
    now: datetime,
) -> RenderedEmail:
    """The survey email through the layout (footer, unsubscribe link)."""
    survey = survey_context(settings, renderer, spec, delivery_id, context, now)
    return renderer.email(TEMPLATE, spec.subject or "", {**context, "survey": survey})


def nudge_fields(renderer: Renderer, spec: SurveySpec, context: dict[str, Any]) -> dict[str, Any]:
    """The nudge columns of an in-app survey: the question as its title, the kind, the comment question."""
    return {
        "title": renderer.text(spec.question, context),
        "body": "",
        "survey_kind": spec.kind,
        "survey_comment": renderer.text(spec.comment, context) if spec.comment else None,
    }


def check(
    settings: Settings, renderer: Renderer, body: dict[str, Any], context: dict[str, Any]
) -> list[tuple[tuple[str, ...], str]]:
    """Problems (field path, message) rendering a survey step for a sample recipient, as it is sent."""
    found: list[tuple[tuple[str, ...], str]] = []
    for field in ("subject", "question", "comment"):
        if isinstance(body.get(field), str):
            found += [((f,), m) for f, m in renderer.check_text(field, body[field], context)]
    if found:
        return found
    try:
        spec = SurveySpec.model_validate(body)
    except ValueError:
        return found  # the journey's schema check reports it
    if spec.channel == "email":
        try:
            email(settings, renderer, spec, "sample-delivery", context, survey_links.EPOCH)
        except Exception as exc:  # the overriding template's mistake, named as it would fail at send time
            found.append((("template",), f"{TEMPLATE}: {exc}"))
    return found
