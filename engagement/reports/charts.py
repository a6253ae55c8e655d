"""Charts as inline SVG drawn in Python: no script, no CDN, they open offline and print.

Every chart is an `<svg class="chart" data-chart=KIND data-points=N>`; each mark carries a
`<title>` so hovering shows its number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

WIDTH = 720
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9")
BAND_COLOURS = {"green": "#16a34a", "yellow": "#eab308", "red": "#dc2626"}
FONT = 'font-family="system-ui,sans-serif" font-size="12"'


def _svg(kind: str, height: int, points: int, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{kind}" data-points="{points}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = "#374151") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" {FONT}>{escape(text)}</text>'


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = float(10 ** (len(str(int(value))) - 1))
    return next(m * step for m in (1.0, 2.0, 2.5, 5.0, 10.0) if value <= m * step)


def bars(label: str, items: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, longest first in the given order (a funnel)."""
    row, left = 26, 170
    height = max(1, len(items)) * row + 10
    top = max((v for _, v in items), default=0) or 1
    body = []
    for i, (name, value) in enumerate(items):
        y = 5 + i * row
        w = (WIDTH - left - 70) * value / top
        body.append(_text(left - 8, y + 16, name, "end"))
        body.append(
            f'<rect class="mark" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="3" '
            f'fill="{PALETTE[0]}" data-value="{value}"><title>{escape(name)}: {value}</title></rect>'
        )
        body.append(_text(left + w + 6, y + 16, str(value)))
    return _svg("funnel", height, len(items), label, body)


def lines(
    label: str,
    days: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    kind: str = "daily",
    percent: bool = False,
) -> str:
    """One line per series over days (or months), with a y axis and a legend; a None value is a gap."""
    height, left, right, top, bottom = 240, 48, 16, 28, 36
    peak = _nice_max(
        max((max((v for v in vs if v is not None), default=0) for vs in series.values()), default=0)
    )
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    n = max(len(days), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / peak)

    def shown(v: float) -> str:
        return f"{100 * v:.1f}%" if percent else f"{v:g}"

    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" stroke="#9ca3af"/>'
    ]
    for k in range(5):
        value = peak * k / 4
        body.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{WIDTH - right}" y2="{y(value):.1f}" stroke="#f3f4f6"/>'
        )
        body.append(_text(left - 6, y(value) + 4, f"{100 * value:g}%" if percent else f"{value:g}", "end"))
    for i in sorted({0, n // 2, n - 1}):
        if i < len(days):
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            body.append(_text(x(i), height - 14, days[i], anchor))
    points = 0
    for s, (name, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        for coords in (" ".join(run) for run in runs if run):
            body.append(
                f'<polyline class="mark" fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
            )
        for i, v in enumerate(values):
            if v:
                body.append(
                    f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}" data-value="{v}">'
                    f"<title>{escape(name)} {escape(days[i])}: {shown(v)}</title></circle>"
                )
        points += len(values)
        body.append(f'<rect x="{left + 120 * s}" y="6" width="10" height="10" fill="{colour}"/>')
        body.append(_text(left + 14 + 120 * s, 15, name))
    return _svg(kind, height, points, label, body)


def bridge(label: str, start: float, steps: Sequence[tuple[str, float]], end: float) -> str:
    """A waterfall: the start bar, each step floating up (or down, when negative) from the last, the end bar."""
    height, left, right, top, bottom = 260, 64, 16, 20, 40
    levels, level = [start], start
    for _, delta in steps:
        level += delta
        levels.append(level)
    peak = _nice_max(max([*levels, end, 0.0]))
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    slot = plot_w / (len(steps) + 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - v / peak)

    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" stroke="#9ca3af"/>'
    ]
    for k in range(5):
        value = peak * k / 4
        body.append(_text(left - 6, y(value) + 4, f"{value:,.0f}", "end"))
    bars = [("start", 0.0, start, PALETTE[0])]
    level = start
    for name, delta in steps:
        bars.append((name, level, level + delta, "#16a34a" if delta >= 0 else "#dc2626"))
        level += delta
    bars.append(("end", 0.0, end, PALETTE[0]))
    for i, (name, low, high, colour) in enumerate(bars):
        value = high - low
        y1, y2 = sorted((y(low), y(high)))
        xx = left + i * slot + slot * 0.15
        body.append(
            f'<rect class="mark" x="{xx:.1f}" y="{y1:.1f}" width="{slot * 0.7:.1f}" height="{max(y2 - y1, 1):.1f}" '
            f'fill="{colour}" data-value="{value:.2f}"><title>{escape(name)}: {value:+,.2f}</title></rect>'
        )
        body.append(_text(left + i * slot + slot / 2, height - 22, name, "middle"))
        body.append(
            _text(
                left + i * slot + slot / 2,
                height - 8,
                f"{value:+,.0f}" if 0 < i <= len(steps) else f"{value:,.0f}",
                "middle",
            )
        )
    return _svg("bridge", height, len(bars), label, body)


def interval(label: str, estimate: float, low: float, high: float, rates: Sequence[tuple[str, float]]) -> str:
    """The lift in percentage points with its interval, against a zero line; the two rates beside it."""
    height, left, right = 120, 150, 30
    span = max(abs(low), abs(high), abs(estimate), 0.01) * 1.15
    plot_w = WIDTH - left - right

    def x(v: float) -> float:
        return left + plot_w * (v + span) / (2 * span)

    mid = 40
    colour = "#16a34a" if low > 0 else "#dc2626" if high < 0 else "#6b7280"
    body = [
        f'<line x1="{x(0):.1f}" y1="15" x2="{x(0):.1f}" y2="70" stroke="#9ca3af" stroke-dasharray="4 3"/>',
        _text(x(0), 85, "0", "middle"),
        _text(x(-span), 85, f"{-100 * span:.1f} pts", "start"),
        _text(x(span), 85, f"{100 * span:+.1f} pts", "end"),
        _text(left - 10, mid + 4, "lift (treated − holdout)", "end"),
        f'<line class="mark" x1="{x(low):.1f}" y1="{mid}" x2="{x(high):.1f}" y2="{mid}" stroke="{colour}" '
        f'stroke-width="3" data-low="{low:.6f}" data-high="{high:.6f}"><title>95% interval: {100 * low:+.1f} to '
        f"{100 * high:+.1f} pts</title></line>",
        f'<line x1="{x(low):.1f}" y1="{mid - 8}" x2="{x(low):.1f}" y2="{mid + 8}" stroke="{colour}" stroke-width="2"/>',
        f'<line x1="{x(high):.1f}" y1="{mid - 8}" x2="{x(high):.1f}" y2="{mid + 8}" stroke="{colour}" stroke-width="2"/>',
        f'<circle class="mark" cx="{x(estimate):.1f}" cy="{mid}" r="6" fill="{colour}" data-value="{estimate:.6f}">'
        f"<title>lift: {100 * estimate:+.1f} pts</title></circle>",
        _text(x(estimate), mid - 12, f"{100 * estimate:+.1f} pts", "middle", colour),
    ]
    legend = " · ".join(f"{name} {100 * rate:.1f}%" for name, rate in rates)
    body.append(_text(left, 110, legend))
    return _svg("lift", height, 3, label, body)


def grouped(
    label: str, categories: Sequence[str], series: Mapping[str, Sequence[float | None]], unit: str
) -> str:
    """Vertical bars per category, one per series (e.g. median days by cohort, treatment vs holdout)."""
    height, left, right, top, bottom = 220, 48, 16, 28, 36
    peak = _nice_max(max((v or 0 for values in series.values() for v in values), default=0))
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    slot = plot_w / max(len(categories), 1)
    bar = slot * 0.8 / max(len(series), 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" stroke="#9ca3af"/>'
    ]
    for k in range(5):
        value = peak * k / 4
        yy = top + plot_h * (1 - value / peak)
        body.append(_text(left - 6, yy + 4, f"{value:g}", "end"))
    points = 0
    for s, (name, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        body.append(f'<rect x="{left + 120 * s}" y="6" width="10" height="10" fill="{colour}"/>')
        body.append(_text(left + 14 + 120 * s, 15, name))
        for i, v in enumerate(values):
            if v is None:
                continue
            h = plot_h * v / peak
            xx = left + i * slot + slot * 0.1 + s * bar
            body.append(
                f'<rect class="mark" x="{xx:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}" data-value="{v:.4f}"><title>{escape(name)} {escape(categories[i])}: {v:.1f} {unit}'
                "</title></rect>"
            )
            points += 1
    every = max(1, -(-len(categories) // 8))  # at most about eight labels, so they never overlap
    for i, category in enumerate(categories):
        if i % every == 0:
            body.append(_text(left + i * slot + slot / 2, height - 14, category, "middle"))
    return _svg("ttv", height, points, label, body)


def stacked(label: str, days: Sequence[str], bands: Mapping[str, Sequence[int]]) -> str:
    """Stacked bars per day (score bands: red at the bottom, then yellow, then green)."""
    height, left, right, top, bottom = 220, 48, 16, 28, 36
    totals = [sum(values[i] for values in bands.values()) for i in range(len(days))]
    peak = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    slot = plot_w / max(len(days), 1)
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" stroke="#9ca3af"/>'
    ]
    for k in range(5):
        value = peak * k / 4
        body.append(_text(left - 6, top + plot_h * (1 - value / peak) + 4, f"{value:g}", "end"))
    points = 0
    for i, day in enumerate(days):
        base = 0.0
        for s, (name, values) in enumerate(bands.items()):
            v = values[i]
            if not v:
                continue
            h = plot_h * v / peak
            body.append(
                f'<rect class="mark" x="{left + i * slot + slot * 0.1:.1f}" y="{top + plot_h - base - h:.1f}" '
                f'width="{slot * 0.8:.1f}" height="{h:.1f}" fill="{BAND_COLOURS.get(name, PALETTE[s])}" '
                f'data-value="{v}"><title>{escape(day)} {escape(name)}: {v}</title></rect>'
            )
            base += h
            points += 1
    for s, name in enumerate(bands):
        body.append(
            f'<rect x="{left + 90 * s}" y="6" width="10" height="10" fill="{BAND_COLOURS.get(name, PALETTE[s])}"/>'
        )
        body.append(_text(left + 14 + 90 * s, 15, name))
    for i in sorted({0, len(days) // 2, len(days) - 1}):
        if 0 <= i < len(days):
            body.append(_text(left + i * slot + slot / 2, height - 14, days[i], "middle"))
    return _svg("bands", height, points, label, body)
