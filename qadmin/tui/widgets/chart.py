"""A bar chart of one measure of a history series (`qadmin.insight.HistorySeries`), as wide and
as tall as its widget: a title line, then bars drawn in eighth blocks.

A range has more buckets than a terminal has columns (a day is 1,440 minutes), so each bar covers
a whole number of buckets, a round one (15 minutes, 8 hours), counted back from the newest so that
the last bar always ends now. Counts add up within a bar; runtimes are read from the bar's merged
histogram and waits are the longest one, so that no bar averages a spike away.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rich.text import Text
from textual.widget import Widget

from qadmin.insight import HOUR, MINUTE, HistoryPoint, HistorySeries, percentile
from qadmin.tui.figures import span
from qadmin.tui.text import theme_style

#: what one bar shows of the buckets it covers; None when they recorded nothing to measure
Measure = Callable[[Sequence[HistoryPoint]], float | None]
#: buckets a bar may cover, by resolution: the smallest that fits the width is used
ROUND_BARS = {MINUTE: (1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 180, 360, 720), HOUR: (1, 2, 3, 4, 6, 8, 12, 24, 48)}
#: cells right of the bars for the value of the tallest one
AXIS = 9
EIGHTHS = " ▁▂▃▄▅▆▇█"
#: the bottom row under a bar with nothing in it: the chart's extent stays visible
BASELINE = "·"


def processed(points: Sequence[HistoryPoint]) -> float:
    return float(sum(p.processed for p in points))


def failed(points: Sequence[HistoryPoint]) -> float:
    return float(sum(p.failed for p in points))


def retried(points: Sequence[HistoryPoint]) -> float:
    return float(sum(p.retried for p in points))


def quantile(q: float) -> Measure:
    """The q-quantile of the runtimes of every run in the buckets."""

    def measure(points: Sequence[HistoryPoint]) -> float | None:
        merged: dict[int, int] = {}
        for point in points:
            for index, n in point.runtimes.items():
                merged[index] = merged.get(index, 0) + n
        return percentile(merged, q)

    return measure


def longest_wait(points: Sequence[HistoryPoint]) -> float | None:
    waits = [p.latency for p in points if p.latency is not None]
    return max(waits) if waits else None


def buckets_per_bar(buckets: int, width: int, resolution: str) -> int:
    needed = max(1, math.ceil(buckets / max(width, 1)))
    return next((n for n in ROUND_BARS.get(resolution, ()) if n >= needed), needed)


def group(points: Sequence[HistoryPoint], per_bar: int) -> list[Sequence[HistoryPoint]]:
    """`points` in bars of `per_bar`, the newest bar full (the oldest may be short)."""
    first = len(points) % per_bar
    bars = [points[:first]] if first else []
    bars += [points[i : i + per_bar] for i in range(first, len(points), per_bar)]
    return bars


def bar_rows(values: Sequence[float | None], height: int) -> list[str]:
    """Rows of eighth blocks, top first; the tallest value fills the height and any value above
    zero shows at least one eighth (one job in a day is still seen)."""
    top = max((v for v in values if v), default=0.0)
    eighths = [0 if not v or top <= 0 else max(1, round(v / top * height * 8)) for v in values]
    rows = []
    for level in reversed(range(height)):
        row = "".join(EIGHTHS[min(8, max(0, e - level * 8))] for e in eighths)
        if level == 0:
            row = "".join(BASELINE if e == 0 else c for c, e in zip(row, eighths))
        rows.append(row)
    return rows


class HistoryChart(Widget):
    """One measure of a series; `show` gives it the series, the width decides the bars."""

    DEFAULT_CSS = """
    HistoryChart { height: 4; padding: 0 1; }
    """

    def __init__(
        self,
        title: str,
        measure: Measure,
        *,
        color: str,
        value: Callable[[float], str],
        headline: Callable[[HistorySeries], str] = lambda _series: "",
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.title = title
        self.measure = measure
        #: the theme variable the bars are drawn in
        self.color = color
        #: how the tallest bar's value is written
        self.value = value
        #: what the title line says of the whole series (a total, a percentile)
        self.headline = headline
        self.series: HistorySeries | None = None
        #: the values of the bars last drawn (tests read them)
        self.bars: list[float | None] = []

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh())

    def show(self, series: HistorySeries | None) -> None:
        self.series = series
        self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        series = self.series
        width = self.content_size.width or self.size.width or 80
        text.append(self.title, style=theme_style(self.app, "text-accent", bold=True))
        if series is None:
            return text
        headline = self.headline(series)
        if headline:
            text.append("  " + headline)
        room = max(width - AXIS, 8)
        per_bar = buckets_per_bar(len(series.points), room, series.resolution)
        self.bars = [self.measure(bar) for bar in group(series.points, per_bar)]
        scale = f"a bar = {span(per_bar, series.resolution)}"
        text.append(" " * max(width - text.cell_len - len(scale), 2))
        text.append(scale, style=theme_style(self.app, "text-muted"))
        stretch = max(1, room // len(self.bars)) if self.bars else 1
        style, muted = theme_style(self.app, self.color), theme_style(self.app, "text-muted")
        top = max((v for v in self.bars if v), default=None)
        for index, row in enumerate(bar_rows(self.bars, max(self.content_size.height - 1, 1))):
            text.append("\n")
            for char in row:
                text.append(char * stretch, style=muted if char == BASELINE else style)
            if index == 0 and top is not None:
                text.append(" " + self.value(top), style=muted)
        return text
