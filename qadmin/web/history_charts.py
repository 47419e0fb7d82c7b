"""The history page's charts: stored buckets summed into display slots, and their geometry.

A day holds 1,440 minute buckets and a month 720 hour buckets, more than a chart has pixels for a
bar, so the buckets of a range are summed into at most `MAX_SLOTS` slots of a round size (15
minutes for a day, 6 hours for a month); counts and runtime histograms add, latency keeps its
maximum. Slots sit on round times (a 15-minute slot starts at :00, :15, …) so that the axis labels
fall on slot edges.

The geometry differs from `charts.throughput` in one way: x positions are percentages of the
chart's width and y positions are pixels, so the SVG is laid out at the size it is shown and
never scaled. Its text keeps its size and shape from a phone to a wide screen, and it still needs
no inline style (the CSP forbids them): only SVG attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from qadmin.insight import Counts, HistoryPoint, HistorySeries, percentile

#: at most this many bars (or line points) per chart
MAX_SLOTS = 120
#: the slot sizes a range is drawn with, the smallest that keeps it under MAX_SLOTS
SLOT_SIZES = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080))
#: axis ticks: (spacing, strftime format), the first that gives at most MAX_TICKS labels
TICK_SIZES = (
    (timedelta(minutes=10), "%H:%M"),
    (timedelta(minutes=30), "%H:%M"),
    (timedelta(hours=1), "%H:%M"),
    (timedelta(hours=3), "%H:%M"),
    (timedelta(hours=6), "%H:%M"),
    (timedelta(days=1), "%a %d"),
    (timedelta(days=7), "%b %d"),
)
MAX_TICKS = 8
#: no tick label this close (percent of the width) to the chart's edges, where "now" and the
#: first label would collide
EDGE = 7.0
#: the Monday 1970-01-05: weekly ticks fall on Mondays
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Slot(Counts):
    """Several stored buckets summed: what one bar (or one point of a line) shows."""

    start: datetime
    end: datetime

    @property
    def p50(self) -> float | None:
        return percentile(self.runtimes, 0.5)

    @property
    def p95(self) -> float | None:
        return percentile(self.runtimes, 0.95)

    @property
    def label(self) -> str:
        """When, for a tooltip: "14:15–14:30 UTC" (with the day for slots of an hour or more)."""
        fmt = "%H:%M" if self.end - self.start < timedelta(hours=1) else "%a %d %H:%M"
        return f"{self.start:{fmt}}–{self.end:%H:%M} UTC"


def combined(parts: Sequence[HistorySeries]) -> HistorySeries:
    """Series of the same range and buckets (`ops.insight.by_queue`'s) as one: counts and runtime
    histograms added, latency the largest — the unnarrowed history without reading it again."""
    first = parts[0]
    points = []
    for at_once in zip(*(p.points for p in parts), strict=True):
        slot = Slot(start=at_once[0].at, end=at_once[0].at)
        for point in at_once:
            slot.add(point)
        points.append(
            HistoryPoint(
                slot.start, slot.processed, slot.failed, slot.retried, slot.runtime_total, slot.runtimes, slot.latency
            )
        )
    return HistorySeries(first.range, first.resolution, first.since, first.until, points)


def slot_size(span: timedelta, resolution_step: timedelta) -> timedelta:
    for size in SLOT_SIZES:
        if size >= resolution_step and span / size <= MAX_SLOTS:
            return size
    return SLOT_SIZES[-1]


def slots(series: HistorySeries) -> list[Slot]:
    """The series' points summed into round slots covering [since, until), oldest first, empty
    slots included."""
    span = _utc(series.until) - _utc(series.since)
    step = timedelta(minutes=1) if series.resolution == "minute" else timedelta(hours=1)
    size = slot_size(span, step)
    first = _floor(series.since, size)
    count = max(1, -(-(_utc(series.until) - first) // size))
    out = [Slot(start=first + i * size, end=first + (i + 1) * size) for i in range(count)]
    for point in series.points:
        index = (_utc(point.at) - first) // size
        if 0 <= index < count:
            out[index].add(point)
    return out


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _floor(moment: datetime, size: timedelta) -> datetime:
    moment = _utc(moment)
    return moment - (moment - _EPOCH) % size


# --- geometry ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    anchor: str = "middle"
    #: every other label of a busy axis, which a phone's width leaves out
    minor: bool = False


@dataclass(frozen=True)
class Gridline:
    y: float
    label: str


@dataclass(frozen=True)
class Rect:
    kind: str
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    """One slot's bar: x and width in percent, its stacked parts in pixels."""

    x: float
    width: float
    parts: list[Rect]
    label: str


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Line:
    kind: str
    segments: list[Segment]
    #: points with no neighbour to join (a lone busy slot), drawn as dots
    dots: list[tuple[float, float]]


@dataclass(frozen=True)
class Chart:
    """A chart laid out at `height` pixels and any width: x in percent, y in pixels."""

    height: int
    baseline: float
    top: float
    gridlines: list[Gridline]
    ticks: list[Tick]
    columns: list[Column] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    #: what a column says when hovered, for line charts (x, width, text)
    hits: list[Column] = field(default_factory=list)


#: room under the plot for the time labels, above it for the top gridline's label
BOTTOM, TOP = 18, 14


def _x(moment: datetime, since: datetime, span: timedelta) -> float:
    return max(0.0, min(100.0, (moment - since) / span * 100))


def _place(slot: Slot, since: datetime, span: timedelta) -> tuple[float, float]:
    left = _x(slot.start, since, span)
    right = _x(slot.end, since, span)
    return round(left, 3), round(max(right - left, 0.0), 3)


def bars(series: HistorySeries, rows: Sequence[Slot], height: int = 160, most_ticks: int = MAX_TICKS) -> Chart:
    """Runs per slot: processed, retried and failed stacked (failed at the bottom)."""
    since, span = _utc(series.since), _utc(series.until) - _utc(series.since)
    baseline = height - BOTTOM
    peak = nice_ceiling(max([s.runs for s in rows] + [0]))
    plot = baseline - TOP
    columns: list[Column] = []
    for slot in rows:
        x, width = _place(slot, since, span)
        y = float(baseline)
        parts: list[Rect] = []
        for kind, n in (("failed", slot.failed), ("retried", slot.retried), ("processed", slot.processed)):
            if n:
                h = plot * n / peak
                y -= h
                parts.append(Rect(kind, round(y, 2), round(h, 2)))
        text = f"{slot.label}: {slot.processed} processed, {slot.retried} retried, {slot.failed} failed"
        columns.append(Column(x, width, parts, text))
    return Chart(
        height=height,
        baseline=baseline,
        top=TOP,
        gridlines=_gridlines(peak, baseline, plot, count),
        ticks=ticks(since, _utc(series.until), most_ticks),
        columns=columns,
    )


def lines(
    series: HistorySeries,
    rows: Sequence[Slot],
    values: dict[str, Callable[[Slot], float | None]],
    describe: Callable[[Slot], str],
    height: int = 160,
    most_ticks: int = MAX_TICKS,
) -> Chart:
    """One line per entry of `values` (a CSS class -> the slot's value, None for no value), drawn
    through the middle of each slot; a slot with no value breaks the line. The y axis is seconds."""
    since, span = _utc(series.since), _utc(series.until) - _utc(series.since)
    baseline = height - BOTTOM
    plot = baseline - TOP
    found = [v for get in values.values() for v in (get(s) for s in rows) if v is not None]
    peak = nice_ceiling(max(found + [0.0]), durations=True)
    drawn: list[Line] = []
    for kind, get in values.items():
        points: list[tuple[float, float] | None] = []
        for slot in rows:
            value = get(slot)
            if value is None:
                points.append(None)
                continue
            x, width = _place(slot, since, span)
            points.append((round(x + width / 2, 3), round(baseline - plot * min(value, peak) / peak, 2)))
        drawn.append(_join(kind, points))
    hits = []
    for slot in rows:
        x, width = _place(slot, since, span)
        hits.append(Column(x, width, [], f"{slot.label}: {describe(slot)}"))
    return Chart(
        height=height,
        baseline=baseline,
        top=TOP,
        gridlines=_gridlines(peak, baseline, plot, duration),
        ticks=ticks(since, _utc(series.until), most_ticks),
        lines=drawn,
        hits=hits,
    )


def _join(kind: str, points: Sequence[tuple[float, float] | None]) -> Line:
    segments: list[Segment] = []
    dots: list[tuple[float, float]] = []
    for i, here in enumerate(points):
        if here is None:
            continue
        before = points[i - 1] if i else None
        after = points[i + 1] if i + 1 < len(points) else None
        if after is not None:
            segments.append(Segment(here[0], here[1], after[0], after[1]))
        if before is None and after is None:
            dots.append(here)
    return Line(kind, segments, dots)


def _gridlines(peak: float, baseline: float, plot: float, fmt: Callable[[float], str]) -> list[Gridline]:
    return [Gridline(round(baseline - plot * frac, 2), fmt(peak * frac)) for frac in (0.5, 1.0)]


def ticks(since: datetime, until: datetime, most: int = MAX_TICKS) -> list[Tick]:
    """Labels on round times (every 10 minutes for an hour, 3 hours for a day, each day for a
    week, each Monday for a month), at most `most`, and "now" at the right edge. With more than
    four, every other one is minor (left out on a phone)."""
    since, until = _utc(since), _utc(until)
    span = until - since
    spacing, fmt = next(((s, f) for s, f in TICK_SIZES if span / s <= most), TICK_SIZES[-1])
    origin = _MONDAY if spacing >= timedelta(days=7) else _EPOCH
    moment = since + (origin - since) % spacing
    out: list[Tick] = []
    while moment < until:
        x = _x(moment, since, span)
        if EDGE <= x <= 100 - 2 * EDGE:
            out.append(Tick(round(x, 3), f"{moment:{fmt}}"))
        moment += spacing
    if len(out) > 4:
        # the label next to "now" stays: the one before it is the first to go
        out = [Tick(t.x, t.label, t.anchor, (len(out) - 1 - i) % 2 == 1) for i, t in enumerate(out)]
    out.append(Tick(100.0, "now", "end"))
    return out


# --- numbers -------------------------------------------------------------------------------------
#: the tops of a duration axis, seconds: round in the unit each is shown in
DURATION_TOPS = (
    *(m / 1000 for m in (1, 2, 5, 10, 20, 50, 100, 200, 500)),
    *(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 43200, 86400),
)


def nice_ceiling(value: float, *, durations: bool = False) -> float:
    """The smallest round number at or above `value`, so that gridlines read as round numbers:
    1, 2 or 5 times a power of ten for counts (1 for nothing), a round duration for seconds (a
    millisecond for nothing; whole days past a day)."""
    if durations:
        top = next((t for t in DURATION_TOPS if t >= value * (1 - 1e-9)), None)
        return float(top) if top is not None else 86400.0 * -(-value // 86400)
    if value <= 0:
        return 1.0
    scale = 10.0 ** _floor_log10(value)
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * scale >= value * (1 - 1e-9):
            return max(step * scale, 1.0)
    return 10 * scale


def _floor_log10(value: float) -> int:
    exponent = 0
    while value >= 10:
        value /= 10
        exponent += 1
    while value < 1:
        value *= 10
        exponent -= 1
    return exponent


def count(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def duration(seconds: float | None) -> str:
    """A runtime or a wait, to two or three figures: 0.4 ms, 120 ms, 1.5 s, 12 min, 3.2 h."""
    if seconds is None:
        return "—"
    if seconds < 0.001:
        return f"{seconds * 1000:.2g} ms"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"
