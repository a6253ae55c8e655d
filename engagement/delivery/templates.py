"""Render email bodies, subjects and nudge texts with sandboxed, strict Jinja2."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from engagement import errors
from engagement.delivery import inline_css

HTML_LAYOUT = "_layout.html.j2"
TEXT_LAYOUT = "_layout.txt.j2"
# used when the templates folder has no layout of its own, so no email ever goes without the footer
DEFAULT_LAYOUTS = Path(__file__).parent / "email_layout"


@dataclass(frozen=True)
class RenderedEmail:
    """An email ready for a provider: subject, HTML and text."""

    subject: str
    html: str
    text: str


class Renderer:
    """Compiles each template once and renders it per recipient."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        options: dict[str, Any] = {
            "loader": jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(str(directory)), jinja2.FileSystemLoader(str(DEFAULT_LAYOUTS))]
            ),
            "undefined": jinja2.StrictUndefined,
            "autoescape": jinja2.select_autoescape(["html.j2"], default_for_string=False),
            "trim_blocks": True,
            "lstrip_blocks": True,
            "auto_reload": False,
            "cache_size": -1,
        }
        self.env = ImmutableSandboxedEnvironment(**options)
        self._strings: dict[str, jinja2.Template] = {}
        # <style> stays for clients that honour media queries; nothing is fetched from the network
        self.inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
        self.shapes = inline_css.ShapeInliner(self.inliner.inline)
        # renders each email's HTML as its shape: the same pages, personal values as tokens
        self.shaped = ImmutableSandboxedEnvironment(**options, finalize=self.shapes.finalize)
        self.slack = ImmutableSandboxedEnvironment(**options, finalize=slack_escape)
        self._slack_strings: dict[str, jinja2.Template] = {}

    def email(self, template: str, subject: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render one email: subject, body in both parts, each wrapped in its layout.

        The one path for sending, previewing and `validate`: whatever goes wrong, it raises
        TemplateRenderError naming the template and the file.
        """
        values: list[str] = []
        shaped = {**context, **self.shapes.context(values)}
        rendered_subject = " ".join(_render(template, "subject", lambda: self.text(subject, context)).split())
        html_body = _render(
            template, f"{template}.html.j2", lambda: self._file(self.shaped, template, ".html.j2", shaped)
        )
        text_body = _render(
            template, f"{template}.txt.j2", lambda: self._file(self.env, template, ".txt.j2", context)
        )
        html = _render(
            template,
            HTML_LAYOUT,
            lambda: self.shaped.get_template(HTML_LAYOUT).render(
                {**shaped, "subject": rendered_subject, "content": Markup(html_body)}
            ),
        )
        text = _render(
            template,
            TEXT_LAYOUT,
            lambda: self.env.get_template(TEXT_LAYOUT).render(
                {**context, "subject": rendered_subject, "content": text_body}
            ),
        )
        html = _render(template, "inlining CSS", lambda: self.shapes.inline(html, values))
        return RenderedEmail(rendered_subject, html, text)

    @staticmethod
    def _file(env: jinja2.Environment, template: str, suffix: str, context: Mapping[str, Any]) -> str:
        return env.get_template(template + suffix).render(context)

    def text(self, source: str, context: Mapping[str, Any]) -> str:
        """Render a short plain-text template (subject, nudge text, webhook text)."""
        compiled = self._strings.get(source)
        if compiled is None:
            compiled = self._strings[source] = self.env.from_string(source)
        return compiled.render(context)

    def slack_text(self, source: str, context: Mapping[str, Any]) -> str:
        """Render a webhook text for a Slack-compatible target: every value in it escaped as Slack asks.

        The template's own text is left alone, so a journey may still write `<https://…|a link>`.
        """
        compiled = self._slack_strings.get(source)
        if compiled is None:
            compiled = self._slack_strings[source] = self.slack.from_string(source)
        return compiled.render(context)

    def check_email(self, template: str, subject: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems (field, message) rendering this email for a sample recipient, exactly as it is sent."""
        problems: list[tuple[str, str]] = []
        problems += self._check_string("subject", subject, context)
        for suffix in (".html.j2", ".txt.j2"):
            name = template + suffix
            if not (self.directory / name).is_file():
                problems.append(("template", f"missing template {self.directory / name}"))
        if problems:
            return problems
        try:
            self.email(template, subject, context)
        except errors.TemplateRenderError as exc:
            problems.append(("template", str(exc)))
        return problems

    def check_text(self, field: str, source: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems rendering a short text template for a sample recipient."""
        return self._check_string(field, source, context)

    def _check_string(self, field: str, source: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        try:
            self.text(source, context)
        except jinja2.TemplateSyntaxError as exc:
            return [(field, f"syntax error: {exc.message}")]
        except Exception as exc:  # what would fail at send time fails here: a filter's TypeError too
            return [(field, describe(exc))]
        return []


def slack_escape(value: Any) -> str:
    """One rendered value as Slack's message formatting wants it: `&`, `<`, `>` as entities."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe(exc: Exception) -> str:
    """A short, user-facing description of an error raised while rendering."""
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.name + ':' if exc.name else ''}{exc.lineno}: syntax error: {exc.message}"
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template not found: {exc.name}"
    if isinstance(exc, jinja2.TemplateError):
        return str(exc.message if exc.message is not None else exc)
    if isinstance(exc, UnicodeEncodeError):  # a lone surrogate: only a corrupt stored value brings one
        return f"not valid Unicode text ({exc.object[exc.start : exc.end]!r}): a stored value it shows is corrupt"
    return f"{type(exc).__name__}: {exc}"


def _render(template: str, part: str, render: Callable[[], str]) -> str:
    """Run one rendering stage; any error becomes a TemplateRenderError naming the template and the part."""
    try:
        return render()
    except Exception as exc:  # a filter's TypeError is as much a template bug as an undefined name
        named = isinstance(exc, jinja2.TemplateNotFound) or (
            isinstance(exc, jinja2.TemplateSyntaxError) and exc.name is not None
        )
        where = "" if named else f"{part}: "
        raise errors.TemplateRenderError(f"template {template!r}: {where}{describe(exc)}") from exc


def message_context(
    *,
    contact: Mapping[str, Any] | None,
    account: Mapping[str, Any],
    journey: Mapping[str, Any],
    step_id: str,
    company: Mapping[str, Any],
    unsubscribe_url: str,
) -> dict[str, Any]:
    """The variables every template sees."""
    return {
        "contact": _public(contact) if contact is not None else None,
        "account": _public(account),
        "journey": dict(journey),
        "step": {"id": step_id},
        "company": {"name": company["name"], "postal_address": company["postal_address"]},
        "app_url": str(company.get("app_url", "")).rstrip("/"),
        "unsubscribe_url": unsubscribe_url,
    }


CONTACT_KEYS = ("id", "email", "first_name", "last_name", "role", "timezone", "created_at", "traits")
ACCOUNT_KEYS = ("id", "name", "plan", "mrr", "touch", "signed_up_at", "renewal_date", "traits")


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = CONTACT_KEYS if "account_id" in row else ACCOUNT_KEYS
    out = {k: row.get(k) for k in keys}
    out["traits"] = dict(row.get("traits") or {})
    if "first_name" in out and out["first_name"] is None:
        out["first_name"] = ""
    return out


def sample_context(audience: str, company: Mapping[str, Any]) -> dict[str, Any]:
    """A fully populated recipient, for checking templates before anything is sent."""
    now = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    contact = {
        "id": "sample-contact",
        "account_id": "sample-account",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "role": "admin",
        "timezone": "Europe/London",
        "created_at": now,
        "traits": {},
    }
    account = {
        "id": "sample-account",
        "name": "Example Ltd",
        "plan": "pro",
        "mrr": 299.0,
        "touch": "tech",
        "signed_up_at": now,
        "renewal_date": date(2026, 3, 1),
        "traits": {},
    }
    return message_context(
        contact=contact,
        account=account,
        journey={"id": "sample", "name": "Sample"},
        step_id="sample",
        company=company,
        unsubscribe_url="https://example.com/unsubscribe/sample",
    )
