"""Small server-rendered SVG charts (no JavaScript): daily bars with labelled axes, readable
by screen readers (role="img", a title and a description, one <title> per bar)."""
from __future__ import annotations

from datetime import date
from typing import Callable, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 600, 150
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 10, 24


def daily_bar_chart(*, title: str, days: Sequence[date], values: Sequence[float], colour: str = "#1a4fa0",
                    format_value: Callable[[float], str] = lambda v: f"{v:g}", chart_id: str = "") -> SafeString:
    """One bar per day; the y axis from 0 to the largest value (labelled at 0, half and top)."""
    top = max(values, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    total = sum(values)
    id_attribute = f' id="{chart_id}"' if chart_id else ""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-t {chart_id}-d"{id_attribute} class="bar-chart">',
             f'<title id="{chart_id}-t">{escape(title)}</title>',
             f'<desc id="{chart_id}-d">{len(days)} days from {days[0] if days else ""} to {days[-1] if days else ""}; '
             f'total {escape(format_value(total))}; highest day {escape(format_value(max(values, default=0)))}.</desc>']
    for fraction in (0, .5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c9ccd6" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#4a5266">'
                     f'{escape(format_value(top * fraction))}</text>')
    for i, (day, value) in enumerate(zip(days, values)):
        h = plot_h * value / top
        x = LEFT + i * step + step * .12
        parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * .76:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{day.isoformat()}: {escape(format_value(value))}</title></rect>')
    for i in range(0, len(days), 7):
        x = LEFT + i * step + step / 2
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11" fill="#4a5266">'
                     f'{days[i].strftime("%m-%d")}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
