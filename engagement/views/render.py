"""The CS views as HTML: Jinja2 templates shipped in the package, autoescaped, no script, no CDN."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from engagement.reports import charts
from engagement.reports.html import LOGOUT_FORM, STYLE

EXTRA = """
header nav a{color:#93c5fd}details.explain{margin:.4rem 0}details.explain summary{cursor:pointer}
td.yes{color:#15803d}td.no{color:#b91c1c;font-weight:600}svg.journey-map{max-width:640px}
main td,main th{text-align:left}
@media (max-width:600px){main{padding:.5rem}section{padding:.6rem}header{padding:.6rem}}
"""
ENV = Environment(
    loader=PackageLoader("engagement.views", "templates"),
    autoescape=select_autoescape(["j2", "html"], default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal (a dash when there is none)."""
    return "–" if value is None else f"{value:.1%}"


ENV.globals["percent"] = percent


def page(name: str, title: str, user: str, now: datetime, **values: Any) -> str:
    """Render one template with the shared header (navigation, search box) and style."""
    template = ENV.get_template(name)
    return template.render(
        title=title, user=user, now=now, style=Markup(STYLE + EXTRA), logout=Markup(LOGOUT_FORM), **values
    )


def mrr_chart(account_id: str, months: list[tuple[str, float]]) -> Markup | None:
    """The account's MRR by month as an inline SVG line (charts.py escapes its labels)."""
    if not months:
        return None
    svg = charts.lines(
        f"{account_id} MRR by month", [m for m, _ in months], {"MRR": [v for _, v in months]}, kind="monthly"
    )
    return Markup(svg)  # charts.lines escapes every label and title it writes
