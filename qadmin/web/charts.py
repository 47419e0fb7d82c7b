"""Chart geometry, computed here and drawn as inline SVG by the templates.

Server-side SVG works without JavaScript and needs no inline style (the CSP forbids it); the
live refresh simply swaps in a fresh rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

#: chart size in SVG user units (the SVG scales to its container)
WIDTH, HEIGHT = 720, 150
#: room for the axis labels
LEFT, BOTTOM, TOP = 36, 18, 8


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    processed_y: float
    processed_h: float
    failed_y: float
    failed_h: float
    label: str


@dataclass(frozen=True)
class Throughput:
    bars: list[Bar]
    peak: int
    processed: int
    failed: int
    ticks: list[tuple[float, str]]
    gridlines: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM


def throughput(points: Sequence[tuple[datetime, int, int]], now: datetime, minutes: int = 60) -> Throughput:
    """One bar per minute of the last hour (processed stacked on failed); empty minutes included,
    so the time axis is honest."""
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    per_minute: dict[datetime, tuple[int, int]] = {}
    for minute, processed, failed in points:
        key = minute.replace(second=0, microsecond=0)
        if key.tzinfo is None and start.tzinfo is not None:
            key = key.replace(tzinfo=start.tzinfo)
        p, f = per_minute.get(key, (0, 0))
        per_minute[key] = (p + processed, f + failed)
    slots = [start + timedelta(minutes=i) for i in range(minutes)]
    peak = max([sum(per_minute.get(s, (0, 0))) for s in slots] + [1])
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    step = plot_w / minutes
    baseline = HEIGHT - BOTTOM
    bars: list[Bar] = []
    total_p = total_f = 0
    for i, slot in enumerate(slots):
        processed, failed = per_minute.get(slot, (0, 0))
        total_p, total_f = total_p + processed, total_f + failed
        # `processed` counts every finished run, failures included: the failed part sits at the bottom
        ok = max(processed - failed, 0)
        failed_h = plot_h * failed / peak
        ok_h = plot_h * ok / peak
        x = LEFT + i * step + 1
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(max(step - 2, 1), 2),
                failed_y=round(baseline - failed_h, 2),
                failed_h=round(failed_h, 2),
                processed_y=round(baseline - failed_h - ok_h, 2),
                processed_h=round(ok_h, 2),
                label=f"{slot:%H:%M} UTC: {processed} processed, {failed} failed",
            )
        )
    ticks = [(round(LEFT + i * step + step / 2, 2), f"{slots[i]:%H:%M}") for i in range(0, minutes, 10)]
    # "now" sits under the last bar, pulled in so that it is not cut at the edge
    ticks.append((round(WIDTH - 12, 2), "now"))
    gridlines = [(round(baseline - plot_h * frac, 2), _num(peak * frac)) for frac in (0.5, 1.0)]
    return Throughput(bars=bars, peak=peak, processed=total_p, failed=total_f, ticks=ticks, gridlines=gridlines)


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


@dataclass(frozen=True)
class Segment:
    state: str
    x: float
    width: float
    count: int


def stacked(counts: dict[str, int], states: Sequence[str], width: float = 160.0) -> list[Segment]:
    """A horizontal bar of a queue's jobs by state ("locked" counted without its stale part)."""
    values = {s: counts.get(s, 0) for s in states}
    if "stale" in values and "locked" in values:
        values["locked"] = max(values["locked"] - values["stale"], 0)
    total = sum(values.values())
    if not total:
        return []
    out: list[Segment] = []
    x = 0.0
    for state in states:
        n = values[state]
        if not n:
            continue
        w = width * n / total
        out.append(Segment(state, round(x, 2), round(max(w, 1.5), 2), n))
        x += w
    return out
