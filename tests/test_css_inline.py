"""Rendered emails carry their CSS inline, for clients that ignore <style>; the text part is untouched.

The CSS is inlined once per page shape (`engagement/delivery/inline_css.py`); whatever the recipient's values, the
HTML is byte for byte what inlining that recipient's own page gives."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from engagement import config, errors
from engagement.delivery.templates import HTML_LAYOUT, TEXT_LAYOUT, Renderer, sample_context

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


# the characters HTML parsing and serializing treat specially, and some that it does not
AWKWARD = st.text(alphabet=st.sampled_from(list("aZ9 &<>\"'=;#\xa0é€\n\t\r\0/\\-{}%")), max_size=12)


def uncached(renderer: Renderer, template: str, context: dict[str, Any]) -> str:
    """The HTML part the plain way: the ordinary autoescaping render of the page, inlined whole."""
    subject = " ".join(renderer.text(SUBJECT, context).split())
    body = renderer.env.get_template(f"{template}.html.j2").render(context)
    page = renderer.env.get_template(HTML_LAYOUT).render(
        {**context, "subject": subject, "content": Markup(body)}
    )
    return str(renderer.inliner.inline(page))


def recipient(first_name: str, account_name: str, url: str) -> dict[str, Any]:
    context = sample_context("contact", config.Company().model_dump())
    context["contact"]["first_name"] = first_name
    context["account"]["name"] = account_name
    context["unsubscribe_url"] = url
    return context


@pytest.mark.parametrize("template", SHIPPED)
def test_every_shipped_template_is_served_from_its_shape_from_the_third_recipient_on(
    tmp_path: Path, template: str
) -> None:
    renderer = Renderer(TEMPLATES)
    people = [
        recipient("Ada", "Example Ltd", "https://e.example/u/1"),
        recipient("Radia", "Initech", "https://e.example/u/3"),
        recipient('Grace <b>&amp;</b> "G" O\'Neil\xa0Jr', "A&B <Co>", 'https://e.example/u/2?a=1&b="2"'),
    ]

    for context in people:
        assert renderer.email(template, SUBJECT, context).html == uncached(renderer, template, context)

    assert [s for s in renderer.shapes._shapes.values() if s is not None], "the shape should be cached"


@settings(max_examples=150, deadline=None)
@given(first_name=AWKWARD, account_name=AWKWARD, url=AWKWARD)
def test_any_recipient_values_give_the_same_html_as_inlining_their_own_page(
    renderer: Renderer, first_name: str, account_name: str, url: str
) -> None:
    context = recipient(first_name, account_name, url)

    assert renderer.email("onboarding/welcome", SUBJECT, context).html == uncached(
        renderer, "onboarding/welcome", context
    )


@pytest.mark.parametrize(
    ("css", "body"),
    [
        ('a[href^="https"] { color: red; }', '<a href="{{ unsubscribe_url }}">x</a>'),
        ("p:empty { display: none; }", "<p>{{ contact.first_name }}</p>"),
        (".x { color: red; }", '<p class="{{ contact.first_name }}">x</p>'),
        (".x { color: red; }", '<p class="x" style="margin: {{ contact.first_name }}">x</p>'),
        (".x { color: red; }", "<!-- {{ contact.first_name }} --><p class=x>x</p>"),
        (".x { color: red; }", "<table><tr>{{ contact.first_name }}<td class=x>x</td></tr></table>"),
        (".x { color: red; }", "<pre class=x>{{ contact.first_name }}</pre>"),
    ],
    ids=["attribute-selector", "empty-selector", "class", "style", "comment", "foster-parented", "pre"],
)
@pytest.mark.parametrize("first_name", ["Ada", "", "  ", "\nAda", "x" * 3])
def test_pages_whose_styles_could_depend_on_the_values_are_still_right(
    tmp_path: Path, css: str, body: str, first_name: str
) -> None:
    (tmp_path / HTML_LAYOUT).write_text(
        f"<html><head><title>{{{{ subject }}}}</title><style>{css}</style></head><body>{{{{ content }}}}</body></html>"
    )
    (tmp_path / TEXT_LAYOUT).write_text("{{ content }}")
    (tmp_path / "t.html.j2").write_text(body)
    (tmp_path / "t.txt.j2").write_text("x")
    renderer = Renderer(tmp_path)

    for name in ("Grace", first_name, "Radia"):
        context = recipient(name, "Acme", "https://e.example/u")
        assert renderer.email("t", SUBJECT, context).html == uncached(renderer, "t", context)


def test_undefined_variables_still_fail_the_render(tmp_path: Path) -> None:
    (tmp_path / HTML_LAYOUT).write_text("<html><body>{{ content }}</body></html>")
    (tmp_path / TEXT_LAYOUT).write_text("{{ content }}")
    (tmp_path / "t.html.j2").write_text("<p>{{ contact.nickname }}</p>")
    (tmp_path / "t.txt.j2").write_text("x")

    with pytest.raises(errors.TemplateRenderError, match="nickname"):
        Renderer(tmp_path).email("t", SUBJECT, recipient("Ada", "Acme", "u"))
