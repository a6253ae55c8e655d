"""Rendered emails carry their CSS inline, for clients that ignore <style>; the text part is untouched."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from engagement import config
from engagement.templates import HTML_LAYOUT, TEXT_LAYOUT, Renderer, sample_context

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"
SHIPPED = sorted(
    str(path.relative_to(TEMPLATES)).removesuffix(".html.j2")
    for path in TEMPLATES.rglob("*.html.j2")
    if path.name != HTML_LAYOUT
)
SUBJECT = "News for {{ contact.first_name }}"


class Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if name in (attrs.get("class") or "").split()]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def test_the_shipped_templates_are_found() -> None:
    assert "onboarding/welcome" in SHIPPED and len(SHIPPED) >= 6


@pytest.mark.parametrize("template", SHIPPED)
def test_every_shipped_template_renders_with_its_styles_inlined(renderer: Renderer, template: str) -> None:
    html = renderer.email(template, SUBJECT, sample_context("contact", config.Company().model_dump())).html

    elements = Elements(html)
    buttons = elements.with_class("button")
    assert all(b.get("style") for b in buttons), [b for b in buttons if not b.get("style")]
    assert all("background-color: #1d4ed8" in str(b["style"]) for b in buttons)
    assert all(attrs.get("style") for tag, attrs in elements.tags if tag in ("body", "p"))
    footer = elements.with_class("footer")
    assert len(footer) == 1 and "font-size: 12px" in str(footer[0]["style"])
    assert html.count("<style>") == 1  # kept for clients that honour it (media queries, :hover)


@pytest.mark.parametrize("template", SHIPPED)
def test_the_text_part_is_the_plain_render_with_no_markup(renderer: Renderer, template: str) -> None:
    context = sample_context("contact", config.Company().model_dump())

    email = renderer.email(template, SUBJECT, context)

    body = renderer.env.get_template(f"{template}.txt.j2").render(context)
    layout = renderer.env.get_template(TEXT_LAYOUT)
    assert email.text == layout.render({**context, "subject": email.subject, "content": body})
    assert "style=" not in email.text and "<p" not in email.text


def test_a_linked_stylesheet_is_never_fetched(tmp_path: Path) -> None:
    (tmp_path / HTML_LAYOUT).write_text(
        '<html><head><link rel="stylesheet" href="http://127.0.0.1:9/remote.css">'
        "<style>.button { color: #ffffff; }</style></head><body>{{ content }}</body></html>"
    )
    (tmp_path / TEXT_LAYOUT).write_text("{{ content }}")
    (tmp_path / "hello.html.j2").write_text('<a class="button" href="#">Go</a>')
    (tmp_path / "hello.txt.j2").write_text("Go")

    html = Renderer(tmp_path).email("hello", "Hello", {}).html

    assert '<a class="button" href="#" style="color: #ffffff;">Go</a>' in html
