"""CSS inlined once per page shape gives, byte for byte, what inlining each recipient's own page gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from engagement import config, errors
from engagement.templates import HTML_LAYOUT, TEXT_LAYOUT, Renderer, sample_context

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"
SHIPPED = sorted(
    str(path.relative_to(TEMPLATES)).removesuffix(".html.j2")
    for path in TEMPLATES.rglob("*.html.j2")
    if path.name != HTML_LAYOUT
)
SUBJECT = "News for {{ contact.first_name }}"
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


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.mark.parametrize("template", SHIPPED)
def test_every_shipped_template_is_served_from_its_shape_after_the_first_recipient(
    renderer: Renderer, template: str
) -> None:
    first = recipient("Ada", "Example Ltd", "https://e.example/u/1")
    second = recipient('Grace <b>&amp;</b> "G" O\'Neil\xa0Jr', "A&B <Co>", 'https://e.example/u/2?a=1&b="2"')

    assert renderer.email(template, SUBJECT, first).html == uncached(renderer, template, first)
    assert renderer.email(template, SUBJECT, second).html == uncached(renderer, template, second)

    shapes = [s for s in renderer.shapes._shapes.values() if s is not None]
    assert shapes, "the shipped layout's shape should be cached"


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
