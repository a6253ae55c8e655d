"""One journey's figures split by message variant or by journey version, each group against the first.

Per group: sends, unique opens (an email's open, a nudge's seen), unique clicks and goal conversions (sends
whose enrollment converted; for versions, enrollments that entered under it and converted), with each
rate's difference to the first group (the step's first variant, the journey's oldest version) and its 95%
interval (stats.newcombe, as the holdout lift's). Counted set-based in SQL, one row per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table
from sqlalchemy import Connection, case, exists, func, literal, select
from sqlalchemy.sql import ColumnElement

from engagement import vocab
from engagement.reports import stats
from engagement.reports.period import Period
from engagement.store import schema

d, e, r, kept = schema.deliveries, schema.enrollments, schema.responses, schema.journey_versions
OPENED = (vocab.ResponseKind.OPEN, vocab.ResponseKind.SEEN)
CLICKED = (vocab.ResponseKind.CLICK, vocab.ResponseKind.CLICKED)
RATES = ("open_rate", "click_rate", "conversion_rate")
BEFORE = "(before versions)"  # enrollments and deliveries written before versions were kept


@dataclass
class Group:
    """One variant of a step, or one version of the journey."""

    step_id: str | None  # variants: their step; versions: None
    key: str
    sends: int
    opens: int
    clicks: int
    entered: int  # the conversion rate's denominator: the sends (variants), the enrollments (versions)
    converted: int
    differences: dict[str, stats.Interval | None] = field(default_factory=dict)  # to the first group

    def rate(self, name: str) -> float | None:
        """open_rate, click_rate (of sends) or conversion_rate (of `entered`)."""
        x, n = {"open_rate": (self.opens, self.sends), "click_rate": (self.clicks, self.sends)}.get(
            name, (self.converted, self.entered)
        )
        return x / n if n else None

    def difference(self, name: str, first: Group) -> float | None:
        """This group's rate minus the first group's."""
        mine, theirs = self.rate(name), first.rate(name)
        return None if mine is None or theirs is None else mine - theirs

    def as_row(self, first: Group) -> dict[str, Any]:
        """The group as one flat row (CSV, JSON)."""
        row: dict[str, Any] = {
            "step_id": self.step_id,
            "group": self.key,
            "sends": self.sends,
            "opens": self.opens,
            "clicks": self.clicks,
            "entered": self.entered,
            "converted": self.converted,
        }
        for name in RATES:
            interval = self.differences.get(name)
            row[name] = self.rate(name)
            row[f"{name}_difference"] = self.difference(name, first)
            row[f"{name}_low"] = None if interval is None else interval.low
            row[f"{name}_high"] = None if interval is None else interval.high
        return row


def _counted(kinds: tuple[str, ...]) -> ColumnElement[int]:
    answered = exists(select(literal(1)).where(r.c.delivery_id == d.c.id, r.c.kind.in_(kinds)))
    return func.sum(case((answered, 1), else_=0))


def _sent(journey_id: str, period: Period) -> list[ColumnElement[bool]]:
    return [d.c.journey_id == journey_id, d.c.sent_at >= period.start, d.c.sent_at < period.end]


def variants(conn: Connection, journey_id: str, period: Period, order: dict[str, list[str]]) -> list[Group]:
    """Per message step with variants, per variant: its figures over the sends in `period`; `order` gives each
    step's variants in file order (the first is the one the others are compared with), each one listed even
    when none of its sends fall in `period`."""
    converted = func.sum(case((e.c.outcome == vocab.EnrollmentOutcome.CONVERTED, 1), else_=0))
    query = (
        select(d.c.step_id, d.c.variant, func.count(), _counted(OPENED), _counted(CLICKED), converted)
        .select_from(d.join(e, e.c.id == d.c.enrollment_id))
        .where(*_sent(journey_id, period), d.c.variant.is_not(None))
        .group_by(d.c.step_id, d.c.variant)
    )
    groups = [
        Group(step, variant, int(n), int(o or 0), int(c or 0), int(n), int(v or 0))
        for step, variant, n, o, c, v in conn.execute(query)
    ]
    present = {(g.step_id, g.key) for g in groups}  # a variant nobody got in `period` shows with no sends
    groups += [
        Group(step, key, 0, 0, 0, 0, 0)
        for step, keys in order.items()
        for key in keys
        if (step, key) not in present
    ]

    def place(g: Group) -> tuple[str, int, str]:
        known = order.get(g.step_id or "", [])
        return (g.step_id or "", known.index(g.key) if g.key in known else len(known), g.key)

    groups.sort(key=place)
    for step in dict.fromkeys(g.step_id for g in groups):
        compare([g for g in groups if g.step_id == step])
    return groups


def versions(conn: Connection, journey_id: str, period: Period) -> list[Group]:
    """Per journey version, oldest first: the sends it queued and the enrollments that entered under it in
    `period` (holdout ones left out) with how many of those converted."""
    sent = (
        select(d.c.journey_version, func.count(), _counted(OPENED), _counted(CLICKED))
        .where(*_sent(journey_id, period))
        .group_by(d.c.journey_version)
    )
    entered = (
        select(
            e.c.journey_version,
            func.count(),
            func.sum(case((e.c.outcome == vocab.EnrollmentOutcome.CONVERTED, 1), else_=0)),
        )
        .where(
            e.c.journey_id == journey_id,
            e.c.entered_at >= period.start,
            e.c.entered_at < period.end,
            e.c.holdout.is_(False),
        )
        .group_by(e.c.journey_version)
    )
    sends = {v: (int(n), int(o or 0), int(c or 0)) for v, n, o, c in conn.execute(sent)}
    enrolled = {v: (int(n), int(x or 0)) for v, n, x in conn.execute(entered)}
    first_run = dict(
        conn.execute(select(kept.c.version, kept.c.first_run_at).where(kept.c.journey_id == journey_id)).all()
    )
    keys = sorted(
        set(sends) | set(enrolled),
        key=lambda v: (v is not None, first_run.get(v) is None, first_run.get(v), v or ""),
    )
    groups = [Group(None, v or BEFORE, *sends.get(v, (0, 0, 0)), *enrolled.get(v, (0, 0))) for v in keys]
    compare(groups)
    return groups


def compare(groups: list[Group]) -> None:
    """Set each group's differences to the first group's rates, with Newcombe's 95% interval."""
    if not groups:
        return
    first = groups[0]
    for g in groups:
        for name, (x1, n1), (x2, n2) in (
            ("open_rate", (g.opens, g.sends), (first.opens, first.sends)),
            ("click_rate", (g.clicks, g.sends), (first.clicks, first.sends)),
            ("conversion_rate", (g.converted, g.entered), (first.converted, first.entered)),
        ):
            g.differences[name] = stats.newcombe(x1, n1, x2, n2) if g is not first and n1 and n2 else None


def rows(groups: list[Group]) -> list[dict[str, Any]]:
    """Every group as a flat row, each against the first group of its step (or of the journey)."""
    firsts: dict[str | None, Group] = {}
    for g in groups:
        firsts.setdefault(g.step_id, g)
    return [g.as_row(firsts[g.step_id]) for g in groups]


def table(groups: list[Group], title: str) -> Table:
    """The groups as a terminal table: rates in %, differences to the first group in points with their interval."""
    shown = Table("step", "group", "sends", "opens", "clicks", "converted", *RATES, title=title)
    found = rows(groups)
    for row in found:
        cells = []
        for name in RATES:
            rate, diff, low = row[name], row[f"{name}_difference"], row[f"{name}_low"]
            text = "-" if rate is None else f"{rate:.1%}"
            if low is not None:
                text += f" ({diff * 100:+.1f} pts, 95% {low * 100:+.1f} to {row[f'{name}_high'] * 100:+.1f})"
            cells.append(text)
        counts = (row["sends"], row["opens"], row["clicks"], row["converted"])
        shown.add_row(row["step_id"] or "", row["group"], *(str(c) for c in counts), *cells)
    return shown
