"""Render email bodies, subjects and nudge texts with sandboxed, strict Jinja2."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from engagement import errors, inline_css

HTML_LAYOUT = "_layout.html.j2"
TEXT_LAYOUT = "_layout.txt.j2"


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
            "loader": jinja2.FileSystemLoader(str(directory)),
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

    def email(self, template: str, subject: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render one email: subject, body in both parts, each wrapped in its layout."""
        try:
            rendered_subject = " ".join(self.text(subject, context).split())
            values: list[str] = []
            shaped = {**context, **self.shapes.context(values)}
            html_body = self.shaped.get_template(f"{template}.html.j2").render(shaped)
            text_body = self.env.get_template(f"{template}.txt.j2").render(context)
            full = {**context, "subject": rendered_subject}
            html = self.shaped.get_template(HTML_LAYOUT).render(
                {**shaped, "subject": rendered_subject, "content": Markup(html_body)}
            )
            text = self.env.get_template(TEXT_LAYOUT).render({**full, "content": text_body})
        except jinja2.TemplateError as exc:
            raise errors.TemplateRenderError(f"template {template!r}: {describe(exc)}") from exc
        try:
            html = self.shapes.inline(html, values)
        except css_inline.InlineError as exc:
            raise errors.TemplateRenderError(f"template {template!r}: inlining CSS: {exc}") from exc
        return RenderedEmail(rendered_subject, html, text)

    def text(self, source: str, context: Mapping[str, Any]) -> str:
        """Render a short plain-text template (subject, nudge text, webhook text)."""
        compiled = self._strings.get(source)
        if compiled is None:
            compiled = self._strings[source] = self.env.from_string(source)
        return compiled.render(context)

    def check_email(self, template: str, subject: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems (field, message) rendering this email for a sample recipient."""
        problems: list[tuple[str, str]] = []
        problems += self._check_string("subject", subject, context)
        for suffix in (".html.j2", ".txt.j2"):
            name = template + suffix
            if not (self.directory / name).is_file():
                problems.append(("template", f"missing template {self.directory / name}"))
                continue
            try:
                self.env.get_template(name).render(context)
            except jinja2.TemplateSyntaxError as exc:
                problems.append(("template", f"{name}:{exc.lineno}: syntax error: {exc.message}"))
            except jinja2.TemplateError as exc:
                problems.append(("template", f"{name}: {describe(exc)}"))
        return problems

    def check_text(self, field: str, source: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems rendering a short text template for a sample recipient."""
        return self._check_string(field, source, context)

    def _check_string(self, field: str, source: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        try:
            self.text(source, context)
        except jinja2.TemplateSyntaxError as exc:
            return [(field, f"syntax error: {exc.message}")]
        except jinja2.TemplateError as exc:
            return [(field, describe(exc))]
        return []


def describe(exc: jinja2.TemplateError) -> str:
    """A short, user-facing description of a Jinja error."""
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.message}"
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template not found: {exc.name}"
    return str(exc.message if hasattr(exc, "message") else exc)


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
