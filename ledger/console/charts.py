"""Server-rendered SVG charts (pure): no script, no style attributes (the CSP allows neither), colours from the
console's stylesheet through class names. Each chart has a ``<title>`` and the figures as text, so it reads
without the picture too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 360  # viewBox units; about one CSS pixel each on a phone, a little more in a desktop column
ROW = 26
FONT = 12


@dataclass(frozen=True)
class Bar:
    label: str
    value: int  # what the bar's length shows (minor units, counts, points)
    text: str  # the value as people read it
    tone: str = "bar"  # CSS class: bar, bar-critical, bar-warning, bar-info, bar-ok, bar-muted


def _svg(height: int, title: str, body: list[str]) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>')


def hbar_chart(bars: Sequence[Bar], title: str, *, empty_text: str = "—") -> str:
    """One row per bar: its label above a bar whose length is the value, the figure at the bar's end."""
    if not bars:
        return _svg(ROW, title, [f'<text class="chart-label" x="0" y="{FONT + 4}" font-size="{FONT}">'
                                 f'{escape(empty_text)}</text>'])
    top = max((b.value for b in bars), default=0) or 1
    row = ROW + FONT + 4
    body: list[str] = []
    for i, bar in enumerate(bars):
        y = i * row
        length = 0 if bar.value <= 0 else max(2, round((WIDTH - 110) * bar.value / top))
        body.append(f'<text class="chart-label" x="0" y="{y + FONT}" font-size="{FONT}">{escape(bar.label)}</text>')
        body.append(f'<rect class="{escape(bar.tone)}" x="0" y="{y + FONT + 4}" width="{length}" height="{ROW - 10}" '
                    f'rx="2"/>')
        body.append(f'<text class="chart-value" x="{length + 6}" y="{y + FONT + 4 + ROW - 12}" font-size="{FONT}">'
                    f'{escape(bar.text)}</text>')
    return _svg(len(bars) * row, title, body)


def column_chart(bars: Sequence[Bar], title: str, *, height: int = 150) -> str:
    """Columns over time (e.g. a fortnight of daily sales): short labels under each column, the largest figure
    written above its column."""
    if not bars:
        return _svg(40, title, [])
    top = max((b.value for b in bars), default=0) or 1
    plot = height - FONT * 2 - 10
    step = WIDTH / len(bars)
    width = max(2.0, step * 0.7)
    body: list[str] = [f'<line class="chart-axis" x1="0" y1="{plot + FONT + 4}" x2="{WIDTH}" y2="{plot + FONT + 4}"/>']
    peak = max(range(len(bars)), key=lambda i: bars[i].value)
    for i, bar in enumerate(bars):
        h = 0 if bar.value <= 0 else max(1.0, plot * bar.value / top)
        x = i * step + (step - width) / 2
        y = plot + FONT + 4 - h
        body.append(f'<rect class="{escape(bar.tone)}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}">'
                    f'<title>{escape(bar.label)}: {escape(bar.text)}</title></rect>')
        body.append(f'<text class="chart-tick" x="{i * step + step / 2:.1f}" y="{height - 2}" font-size="{FONT - 2}" '
                    f'text-anchor="middle">{escape(bar.label)}</text>')
        if i == peak and bar.value > 0:
            anchor = "end" if i > len(bars) * 0.7 else "start" if i < len(bars) * 0.3 else "middle"
            body.append(f'<text class="chart-value" x="{i * step + step / 2:.1f}" y="{y - 3:.1f}" '
                        f'font-size="{FONT - 1}" text-anchor="{anchor}">{escape(bar.text)}</text>')
    return _svg(height, title, body)
