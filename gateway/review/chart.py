"""A small stacked bar chart drawn as SVG on the server (no chart library, no
script): one bar per day, one stacked part per series. Colours come from CSS
classes in review.css, so the page's Content-Security-Policy needs no inline
style. Every text is escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 42
_MAX_X_LABELS = 12


@dataclass(frozen=True, slots=True)
class Series:
    css_class: str  # e.g. "bar-held"
    label: str  # shown in the legend and the tooltips


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # the x-axis label, e.g. "2026-11-28"
    values: tuple[int, ...]  # one per series


def nice_ceiling(value: int) -> int:
    """The smallest of 2, 4, 6, 8 x 10^k that is >= value (at least 2): even,
    so the middle grid line has a whole number."""
    power = 1
    while True:
        for step in (2, 4, 6, 8, 10):
            if step * power >= value:
                return step * power
        power *= 10


def stacked_bars(bars: Sequence[Bar], series: Sequence[Series], title: str) -> Markup:
    """An ``<svg>`` element (safe to put in a template as is)."""
    top = nice_ceiling(max((sum(b.values) for b in bars), default=0))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    parts += _grid(top, plot_w, plot_h)
    slot = plot_w / max(len(bars), 1)
    every = max(1, math.ceil(len(bars) / _MAX_X_LABELS))
    for i, bar in enumerate(bars):
        x = _LEFT + i * slot + slot * 0.15
        parts += _bar(bar, series, x, slot * 0.7, top, plot_h)
        if i % every == 0:
            cx = _LEFT + i * slot + slot / 2
            parts.append(
                f'<text class="axis-label" x="{cx:.1f}" y="{HEIGHT - _BOTTOM + 16}" '
                f'text-anchor="middle">{escape(bar.label[5:] or bar.label)}</text>'
            )
    parts += _legend(series)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped


def _grid(top: int, plot_w: float, plot_h: float) -> list[str]:
    out = []
    for k in range(3):
        value = top * k // 2  # top is even
        y = _TOP + plot_h - plot_h * k / 2
        out.append(
            f'<line class="gridline" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}"/>'
        )
        out.append(
            f'<text class="axis-label" x="{_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{value}</text>'
        )
    return out


def _bar(
    bar: Bar, series: Sequence[Series], x: float, width: float, top: int, plot_h: float
) -> list[str]:
    out = [f"<g><title>{escape(_tooltip(bar, series))}</title>"]
    base = _TOP + plot_h
    for value, s in zip(bar.values, series, strict=True):
        if value <= 0:
            continue
        height = plot_h * value / top
        base -= height
        out.append(
            f'<rect class="{escape(s.css_class)}" x="{x:.1f}" y="{base:.1f}" '
            f'width="{width:.1f}" height="{height:.1f}"/>'
        )
    out.append("</g>")
    return out


def _tooltip(bar: Bar, series: Sequence[Series]) -> str:
    counts = ", ".join(f"{s.label} {v}" for s, v in zip(series, bar.values, strict=True))
    return f"{bar.label}: {counts}"


def _legend(series: Sequence[Series]) -> list[str]:
    out = []
    x = _LEFT
    y = HEIGHT - 10
    for s in series:
        out.append(
            f'<rect class="{escape(s.css_class)}" x="{x}" y="{y - 9}" width="10" height="10"/>'
        )
        out.append(f'<text class="legend" x="{x + 14}" y="{y}">{escape(s.label)}</text>')
        x += 30 + 12 * len(s.label)
    return out
