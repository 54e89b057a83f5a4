"""Geometry for the server-rendered SVG charts (no Django import).

The templates only place the numbers computed here, so the pictures need no
script and no inline style (the CSP allows neither): colours come from CSS
classes, positions from SVG attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from readiness import rules

# Level bands of CHECKLIST.md: (level, lowest score, highest score).
BANDS: tuple[tuple[str, int, int], ...] = (
    (rules.NOT_READY, 0, rules.AT_RISK_FROM),
    (rules.AT_RISK, rules.AT_RISK_FROM, rules.READY_FROM),
    (rules.READY, rules.READY_FROM, 100),
)


@dataclass(frozen=True)
class Ring:
    """A score gauge: a circle whose stroke is drawn for ``score`` percent."""

    score: int
    level: str
    radius: float = 52.0
    size: int = 128

    @property
    def center(self) -> float:
        return self.size / 2

    @property
    def circumference(self) -> float:
        return 2 * math.pi * self.radius

    @property
    def dasharray(self) -> str:
        filled = self.circumference * max(0, min(100, self.score)) / 100
        return f"{filled:.2f} {self.circumference:.2f}"

    @property
    def rotate(self) -> str:
        # Start the arc at twelve o'clock.
        return f"rotate(-90 {self.center:g} {self.center:g})"


@dataclass(frozen=True)
class Band:
    level: str
    y: float
    height: float
    label_y: float


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    day: date
    score: int
    level: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Gridline:
    y: float
    label: str


@dataclass(frozen=True)
class HistoryChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bands: tuple[Band, ...]
    gridlines: tuple[Gridline, ...]
    ticks: tuple[Tick, ...]
    points: tuple[Point, ...]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    @property
    def plot_width(self) -> float:
        return self.right - self.left

    @property
    def lowest(self) -> int | None:
        return min((p.score for p in self.points), default=None)

    @property
    def highest(self) -> int | None:
        return max((p.score for p in self.points), default=None)


def history_chart(
    history: list[tuple[date, int, str]],
    as_of: date,
    *,
    days: int = 90,
    width: int = 480,
    height: int = 210,
) -> HistoryChart:
    """The score over the last ``days`` days (``as_of`` included), level bands shaded.

    ``history`` is ``(day, score, level)``; days outside the window are left out
    and days without a snapshot are simply not drawn.
    """
    # The right margin holds the band names; the viewBox is about as wide as
    # the card, so that 11px labels stay legible once the SVG is scaled.
    left, right, top, bottom = 28.0, width - 66.0, 10.0, height - 26.0
    first = as_of - timedelta(days=days - 1)
    span = max(1, days - 1)

    def x_for(day: date) -> float:
        return left + (right - left) * (day - first).days / span

    def y_for(score: float) -> float:
        return bottom - (bottom - top) * score / 100

    bands = tuple(
        Band(level=level, y=y_for(high), height=y_for(low) - y_for(high), label_y=(y_for(high) + y_for(low)) / 2 + 4)
        for level, low, high in BANDS
    )
    gridlines = tuple(Gridline(y=y_for(v), label=str(v)) for v in (0, rules.AT_RISK_FROM, rules.READY_FROM, 100))
    tick_days = (first, first + timedelta(days=span // 3), first + timedelta(days=2 * span // 3), as_of)
    anchors = ("start", "middle", "middle", "end")
    ticks = tuple(
        Tick(x=x_for(day), label=day.strftime("%b %-d"), anchor=anchor) for day, anchor in zip(tick_days, anchors, strict=True)
    )
    points = tuple(
        Point(x=x_for(day), y=y_for(score), day=day, score=score, level=level)
        for day, score, level in sorted(history)
        if first <= day <= as_of
    )
    return HistoryChart(width, height, left, right, top, bottom, bands, gridlines, ticks, points)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    within_target: bool

    @property
    def center(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    target_y: float
    target_label: str
    baseline: float


def drill_trend(
    times: list[tuple[date, float]], target_minutes: int, *, width: int = 360, height: int = 150
) -> TrendChart:
    """Bars for re-entry times in minutes, oldest first, with the target drawn as a line."""
    top, baseline, left, right = 24.0, height - 22.0, 8.0, width - 8.0
    scale_max = max([target_minutes * 1.25, *(m for _, m in times)])
    slot = (right - left) / max(1, len(times))
    bar_width = min(36.0, slot * 0.7)

    def y_for(minutes: float) -> float:
        return baseline - (baseline - top) * minutes / scale_max

    bars = tuple(
        Bar(
            x=left + slot * i + (slot - bar_width) / 2,
            y=y_for(minutes),
            width=bar_width,
            height=baseline - y_for(minutes),
            label=day.strftime("%b %-d"),
            value=f"{minutes:.0f} min" if minutes >= 1 else "<1 min",
            within_target=minutes <= target_minutes,
        )
        for i, (day, minutes) in enumerate(times)
    )
    return TrendChart(width, height, bars, y_for(target_minutes), f"target {target_minutes} min", baseline)
