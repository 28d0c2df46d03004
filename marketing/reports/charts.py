"""Charts as inline SVG: no script, no external file, readable on paper.

Each chart is a complete ``<svg>`` element with a ``<title>`` (what screen readers and
tooltips show), text labels on its axes and values, and a legend.  They scale to the width of
the page (``viewBox``) and keep their text legible when printed.  The drawing is sized for a
phone (``WIDTH`` units across, text of at least ``TEXT`` units): on a 390 px screen, where a
chart is about 350 px wide, no text is drawn below 11 px; pages cap a chart's width (540 px)
so text does not grow large on a desktop either.  Values are escaped; the
result is :class:`markupsafe.Markup`, ready to place in a Jinja2 template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import count

from markupsafe import Markup, escape

# One id per chart in a document, for aria-labelledby.
_ids = count(1)

FONT = "Sarabun, 'Noto Sans Thai', 'Leelawadee UI', Tahoma, sans-serif"
#: Width of a chart's drawing (viewBox units) and the size of its smallest text in them.
WIDTH = 460
TEXT = 15


@dataclass(frozen=True)
class Series:
    """One line of a line chart."""

    label: str
    colour: str
    values: Sequence[int]


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart: ``text`` is printed beside it (the value, a share...)."""

    label: str
    value: float
    colour: str
    text: str


# Tops of the value axis (times a power of ten) whose quarters are short numbers.
_NICE_TOPS = (1.0, 1.2, 1.6, 2.0, 2.4, 3.0, 4.0, 5.0, 6.0, 8.0)


def nice_ceiling(value: float) -> float:
    """The smallest round number (see ``_NICE_TOPS``) at least ``value``; 1 for nothing."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for top in _NICE_TOPS:
        if top * power >= value * (1 - 1e-12):
            return top * power
    return 10.0 * power


def thousands(value: float) -> str:
    """``12345`` as ``12,345``; fractions keep up to two decimals (``7.5``, ``1.25``)."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, chart_id: str, kind: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" class="chart chart-{kind}" '
        f'aria-labelledby="{chart_id}" font-family="{escape(FONT)}">',
        f'<title id="{chart_id}">{escape(title)}</title>',
        f'<text x="0" y="18" font-size="{TEXT + 2}" font-weight="bold" fill="#222">'
        f"{escape(title)}</text>",
    ]


def date_ticks(n: int) -> list[int]:
    """Which of ``n`` days get a date label: evenly spaced (the same number of days apart),
    at most five, always the last day; the first day too when the days divide evenly."""
    if n <= 1:
        return [0] if n else []
    gaps = n - 1
    for parts in (4, 3, 2):  # 5 parts would be six labels, too close together on a phone
        if gaps % parts == 0:
            return [k * gaps // parts for k in range(parts + 1)]
    step = -(-gaps // 4)  # ceil: at most five labels, counted back from the last day
    return sorted(range(gaps, -1, -step))


def line_chart(
    *,
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    day_label: Callable[[date], str],
    width: int = WIDTH,
    height: int = 280,
) -> Markup:
    """A line per series over ``days``, with a value axis, date labels and a legend."""
    chart_id = f"chart-{next(_ids)}"
    # Room on the right for half of the last date label, which is centred on its day.
    left, right, top, bottom = 52, 40, 60, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    # Counts: at least 4 at the top, so the quarter gridlines fall on whole numbers.
    top_value = max(nice_ceiling(max((v for s in series for v in s.values), default=0)), 4.0)
    out = _open(width, height, title, chart_id, "line")

    # Legend under the title.
    x = 0
    for item in series:
        out.append(f'<rect x="{x}" y="30" width="13" height="13" fill="{escape(item.colour)}"/>')
        out.append(
            f'<text x="{x + 18}" y="42" font-size="{TEXT}" fill="#222">{escape(item.label)}</text>'
        )
        x += 34 + 10 * len(item.label)

    # Value axis: four gridlines with labels.
    for step in range(5):
        value = top_value * step / 4
        y = top + plot_h - plot_h * step / 4
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="{"#999" if step == 0 else "#e3e3e3"}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 5:.1f}" font-size="{TEXT}" text-anchor="end" '
            f'fill="#555">{escape(thousands(value))}</text>'
        )

    # Date axis: a few days the same number of days apart, each label centred on its day.
    n = len(days)

    def x_at(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    for i in date_ticks(n):
        out.append(
            f'<line x1="{x_at(i):.1f}" y1="{top + plot_h}" x2="{x_at(i):.1f}" '
            f'y2="{top + plot_h + 4}" stroke="#999" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{x_at(i):.1f}" y="{top + plot_h + 27}" font-size="{TEXT}" '
            f'text-anchor="middle" fill="#555">{escape(day_label(days[i]))}</text>'
        )

    for item in series:
        points = " ".join(
            f"{x_at(i):.1f},{top + plot_h - plot_h * v / top_value:.1f}"
            for i, v in enumerate(item.values)
        )
        if n == 1:
            x1, y1 = points.split(",")
            out.append(f'<circle cx="{x1}" cy="{y1}" r="4" fill="{escape(item.colour)}"/>')
        elif n:
            out.append(
                f'<polyline class="series" points="{points}" fill="none" '
                f'stroke="{escape(item.colour)}" stroke-width="2" stroke-linejoin="round"/>'
            )
    out.append("</svg>")
    return Markup("\n".join(out))


def bar_chart(
    *,
    title: str,
    bars: Sequence[Bar],
    width: int = WIDTH,
    bar_height: int = 18,
) -> Markup:
    """Horizontal bars, longest for the largest value, each with its label above it (long Thai
    names keep the whole width) and its text beside it."""
    chart_id = f"chart-{next(_ids)}"
    top, label_room, gap = 36, TEXT + 6, 10
    row = label_room + bar_height + gap
    height = top + len(bars) * row
    text_room = 190
    plot_w = width - text_room
    largest = max((b.value for b in bars), default=0) or 1
    out = _open(width, height, title, chart_id, "bar")
    for i, item in enumerate(bars):
        y = top + i * row
        bar_y = y + label_room
        length = plot_w * item.value / largest if item.value > 0 else 0
        out.append(
            f'<text x="0" y="{y + TEXT:.1f}" font-size="{TEXT}" fill="#222">'
            f"{escape(item.label)}</text>"
        )
        out.append(
            f'<rect class="bar" x="0" y="{bar_y}" width="{length:.1f}" '
            f'height="{bar_height}" fill="{escape(item.colour)}"/>'
        )
        out.append(
            f'<text x="{length + 6:.1f}" y="{bar_y + bar_height * 0.8:.1f}" '
            f'font-size="{TEXT}" fill="#222">{escape(item.text)}</text>'
        )
    out.append("</svg>")
    return Markup("\n".join(out))
