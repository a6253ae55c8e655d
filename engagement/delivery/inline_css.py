"""CSS inlining once per page shape instead of once per recipient.

Inlining a whole email costs about 100 µs, and it gives the same result for every recipient of the same
template: the styles depend on the markup, not on the names and links in it. So the HTML is rendered
with every personal value replaced by a token (the page's *shape*), the shape is inlined once, and each
recipient's values are put back into the inlined shape, escaped exactly as the inliner's serializer
escapes text and attribute values. The result is byte for byte what inlining that recipient's own HTML
gives (`tests/test_css_inline.py` checks this).

A shape is inlined per recipient as before when a token would not be plain text or a plain attribute
value there: in a `<style>`, `<script>` or comment, in a `class`, `id` or `style` attribute, or when the
CSS has selectors that read attribute values or text (`[...]`, `:empty`, `:lang`, ...). Values the HTML
parser would change (empty or whitespace-only, carriage returns, NULs, a leading newline) stay in the
shape itself.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup, escape

VALUES = "engagement.values"  # the render's value list in the Jinja context (no template can name it)
MAX_SHAPES = 512
HTML_SPACE = " \t\n\x0c\r"
# parsed or serialized as raw text, or not HTML at all: a token there is not a recipient's text
RAW_ELEMENTS = (
    "style",
    "script",
    "noscript",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "plaintext",
    "svg",
    "math",
)
SELECTORS_READING_VALUES = re.compile(r"\[|:empty|:blank|:lang|:dir|:has|:contains", re.IGNORECASE)
STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)
ATTRIBUTE = re.compile(r"([^\s\"'=<>/]+)=\"[^\"]*$")
STRUCTURAL_ATTRIBUTES = frozenset({"class", "id", "style"})


def escape_text(value: str) -> str:
    """How the inliner's serializer writes text."""
    return value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    """How the inliner's serializer writes a double-quoted attribute value."""
    return value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")


@dataclass(frozen=True)
class Shape:
    """An inlined shape cut at its tokens: literal parts, and for each gap the value index and its kind."""

    parts: tuple[str, ...]
    slots: tuple[tuple[int, bool], ...]  # (index into the values, is an attribute value)

    def fill(self, values: Sequence[str]) -> str:
        """The inlined page with these values in its gaps."""
        out = [self.parts[0]]
        for (index, attribute), part in zip(self.slots, self.parts[1:], strict=True):
            value = values[index]
            out.append(escape_attribute(value) if attribute else escape_text(value))
            out.append(part)
        return "".join(out)


class ShapeInliner:
    """Inlines rendered HTML through `inline`, caching the inlined shape of each distinct page.

    Render the HTML in a Jinja environment made with `finalize=shapes.finalize`, with `context(values)`
    merged into the template context, then call `inline(rendered, values)`.
    """

    def __init__(self, inline: Any) -> None:
        self._inline = inline  # css_inline.CSSInliner.inline
        self.nonce = "x" + secrets.token_hex(6)
        self._token = re.compile(re.escape(self.nonce) + r"(\d{6})")
        self._shapes: dict[str, Shape | None] = {}
        self._seen: set[int] = set()  # hashes of shapes met once
        self._lock = threading.Lock()

    @staticmethod
    def context(values: list[str]) -> dict[str, Any]:
        """What to add to a render's context so its values are collected into `values`."""
        return {VALUES: values}

    @jinja2.pass_context
    def finalize(self, context: jinja2.runtime.Context, value: Any) -> Any:
        """Jinja's `finalize`: each value written out becomes a token, recorded in the render's list."""
        if isinstance(value, Markup) or hasattr(value, "__html__"):  # markup is structure, not a value
            return value
        values = context.get(VALUES)
        if values is None:
            return value
        text = str(value)  # an undefined value raises here, as it would when written out
        if not text.strip(HTML_SPACE) or "\r" in text or "\0" in text or text[0] == "\n":
            return text  # the parser treats these specially: keep them in the shape
        values.append(text)
        return f"{self.nonce}{len(values) - 1:06d}"

    def inline(self, rendered: str, values: Sequence[str]) -> str:
        """The inlined HTML of `rendered` (a shape) with `values` in its tokens."""
        if not values:
            return str(self._inline(rendered))
        try:
            shape = self._shapes[rendered]
        except KeyError:
            return self._first(rendered, values)
        if shape is None:  # this shape is inlined per recipient
            return str(self._inline(self._own(rendered, values)))
        return shape.fill(values)

    def _first(self, rendered: str, values: Sequence[str]) -> str:
        """Inline a shape not cached: the recipient's own page; from its second sighting on, the shape too.

        Waiting for a second sighting keeps pages whose shape is unique to one recipient (personal markup,
        say) at one inlining each, as without the cache.
        """
        own = str(self._inline(self._own(rendered, values)))
        key = hash(rendered)
        if key not in self._seen:
            with self._lock:
                if len(self._seen) >= 4 * MAX_SHAPES:
                    self._seen.clear()
                self._seen.add(key)
            return own
        shape = self._cut(rendered, len(values))
        if shape is not None and shape.fill(values) != own:
            shape = None  # never serve a shape that does not reproduce the page it was made from
        with self._lock:
            if len(self._shapes) >= MAX_SHAPES:
                self._shapes.clear()
            self._shapes[rendered] = shape
        return own

    def _own(self, rendered: str, values: Sequence[str]) -> str:
        """The recipient's own HTML, as the ordinary autoescaping render writes it."""
        return self._token.sub(lambda m: str(escape(values[int(m.group(1))])), rendered)

    def _cut(self, rendered: str, count: int) -> Shape | None:
        css = "".join(STYLE_BLOCK.findall(rendered))
        if SELECTORS_READING_VALUES.search(css) or self._token.search(css):
            return None
        inlined = str(self._inline(rendered))
        pieces = self._token.split(inlined)
        slots: list[tuple[int, bool]] = []
        position = len(pieces[0])
        for i in range(1, len(pieces), 2):
            kind = _kind(inlined, position)
            if kind is None:
                return None
            slots.append((int(pieces[i]), kind))
            position += len(self.nonce) + 6 + len(pieces[i + 1])
        if sorted(index for index, _ in slots) != list(range(count)):
            return None  # a token lost or repeated by the inliner
        return Shape(tuple(pieces[0::2]), tuple(slots))


def _kind(html: str, position: int) -> bool | None:
    """Whether the token at `position` is an attribute value (True), plain text (False), or neither (None)."""
    before = html[:position]
    lower = before.lower()
    if lower.rfind("<!--") > lower.rfind("-->"):
        return None
    for name in RAW_ELEMENTS:
        if lower.rfind(f"<{name}") > lower.rfind(f"</{name}"):
            return None
    if before.rfind("<") > before.rfind(">"):
        found = ATTRIBUTE.search(before[before.rfind("<") :])
        if found is None or found.group(1).lower() in STRUCTURAL_ATTRIBUTES:
            return None
        return True
    return False
