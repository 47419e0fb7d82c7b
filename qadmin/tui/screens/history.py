"""Page 7: what the workers recorded over the last hour, day, week or month (`ops.insight`):
processed, failed and retried, runtime p50 and p95, and each queue's latency (the longest wait of
a ready job), narrowed to a queue or a class."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from qadmin.insight import HOUR, HistorySeries
from qadmin.ops import Ops
from qadmin.text import visible
from qadmin.tui.figures import count, moment, rate, runtime
from qadmin.tui.screens.insight import InsightScreen, Narrowing, range_bindings
from qadmin.tui.text import theme_style
from qadmin.tui.widgets.chart import HistoryChart, Measure, failed, longest_wait, processed, quantile, retried


@dataclass
class HistoryLoaded(Message):
    token: int
    series: HistorySeries
    #: each queue with anything recorded in the range, for its latency
    queues: dict[str, HistorySeries]


#: what a chart's title line says of the whole series
Headline = Callable[[HistorySeries], str]


def recorded(series: HistorySeries) -> bool:
    return any(p.runs or p.latency is not None for p in series.points)


def _total(measure: Measure) -> Headline:
    def headline(series: HistorySeries) -> str:
        peak = max((measure([p]) or 0 for p in series.points), default=0)
        per = "an hour" if series.resolution == HOUR else "a minute"
        return f"{count(measure(series.points) or 0)} · peak {count(peak)} {per}"

    return headline


def _quantile(q: float) -> Headline:
    def headline(series: HistorySeries) -> str:
        return f"{runtime(quantile(q)(series.points))} over the range"

    return headline


def _wait(series: HistorySeries) -> str:
    latest = next((p.latency for p in reversed(series.points) if p.latency is not None), None)
    return f"longest {runtime(longest_wait(series.points))} · latest {runtime(latest)}"


class HistoryScreen(InsightScreen):
    DEFAULT_CSS = """
    #history-summary, #latency-title { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #history-summary { color: $text-muted; }
    #history-charts { height: 1fr; }
    #chart-processed { height: 5; }
    #history-empty { display: none; padding: 1 2; color: $text-muted; }
    #history-charts.-empty > #history-empty { display: block; }
    #history-charts.-empty > HistoryChart, #history-charts.-empty > #latency-title,
    #history-charts.-empty > #latency { display: none; }
    #latency { height: auto; }
    #latency > HistoryChart { height: 2; }
    """
    PAGE = "history"
    WHAT = "history"
    BINDINGS: ClassVar[list[BindingType]] = range_bindings("history")

    def __init__(self) -> None:
        super().__init__()
        self.series: HistorySeries | None = None
        self.queues: dict[str, HistorySeries] = {}

    def compose_body(self) -> ComposeResult:
        yield from self.compose_controls()
        yield Static("waiting for the backend…", id="history-summary")
        with VerticalScroll(id="history-charts"):
            yield Static("", id="history-empty")
            for name, measure, color in (
                ("processed", processed, "text-success"),
                ("failed", failed, "text-error"),
                ("retried", retried, "text-warning"),
            ):
                yield HistoryChart(
                    name, measure, color=color, value=count, headline=_total(measure), id=f"chart-{name}"
                )
            for q, name in ((0.5, "p50"), (0.95, "p95")):
                yield HistoryChart(
                    f"runtime {name}",
                    quantile(q),
                    color="text-primary",
                    value=runtime,
                    headline=_quantile(q),
                    id=f"chart-{name}",
                )
            yield Static("", id="latency-title")
            yield Vertical(id="latency")

    def main_widget(self) -> Widget:
        return self.query_one("#history-charts")

    def request(self) -> Narrowing:
        return self.narrowing

    def fetch(self, ops: Ops, token: int, request: Narrowing) -> Iterable[Message]:
        insight = ops.insight
        series = insight.history(request.range, queue=request.queue, job_class=request.job_class)
        yield HistoryLoaded(token, series, insight.by_queue(request.range))

    def show_waiting(self) -> None:
        self.query_one("#history-summary", Static).update(f"loading the last {self.narrowing.range}…")

    def redraw(self) -> None:
        for chart in self.query(HistoryChart):
            chart.refresh()
        if self.series is not None:
            self._show_summary(self.series)
            self._show_latency_title()

    async def on_history_loaded(self, message: HistoryLoaded) -> None:
        message.stop()
        if not self.answers_current(message.token):
            return
        self.series, series = message.series, message.series
        wanted = series.queue
        self.queues = {q: s for q, s in message.queues.items() if wanted is None or q == wanted}
        self.learn(queues=message.queues)
        self._show_summary(series)
        charts = self.query_one("#history-charts")
        charts.set_class(not recorded(series) and not any(map(recorded, self.queues.values())), "-empty")
        for chart in charts.query(HistoryChart):
            if chart.parent is charts:
                chart.show(series)
        await self._show_latency()

    def _show_summary(self, series: HistorySeries) -> None:
        app = self.app
        narrowed = " · ".join(
            f"{what} {visible(name)}" for what, name in (("queue", series.queue), ("class", series.job_class)) if name
        )
        summary = Text(f"last {series.range} · {moment(series.since, series.resolution)} → ")
        summary.append(moment(series.until, series.resolution))
        if narrowed:
            summary.append(" · " + narrowed, style=theme_style(app, "text-accent", bold=True))
        points = series.points
        done, lost, again = (sum(getattr(p, f) for p in points) for f in ("processed", "failed", "retried"))
        runs = done + lost + again
        summary.append(f" · {count(done)} processed · ")
        summary.append(f"{count(lost)} failed", style=theme_style(app, "text-error", bold=True) if lost else "")
        summary.append(f" · {count(again)} retried")
        if runs:
            summary.append(f" · failure rate {rate((lost + again) / runs)}")
        self.query_one("#history-summary", Static).update(summary)
        where = f" for {narrowed}" if narrowed else ""
        self.query_one("#history-empty", Static).update(
            Text(
                f"Nothing recorded in the last {series.range}{where}.\n"
                "Workers record what they run, minute by minute; ] and [ change the range, c clears the boxes."
            )
        )

    def _show_latency_title(self) -> None:
        title = Text()
        title.append("queue latency", style=theme_style(self.app, "text-accent", bold=True))
        title.append(" · the longest wait of a ready job, per queue", style=theme_style(self.app, "text-muted"))
        if self.series is not None and self.series.job_class:
            title.append(" (every class)", style=theme_style(self.app, "text-muted"))
        if not self.queues:
            title.append(" · none recorded", style=theme_style(self.app, "text-muted"))
        self.query_one("#latency-title", Static).update(title)

    async def _show_latency(self) -> None:
        self._show_latency_title()
        box = self.query_one("#latency", Vertical)
        charts = list(box.query(HistoryChart))
        if [c.title for c in charts] != [visible(q or "(none)") for q in self.queues]:
            await box.remove_children()
            charts = [
                HistoryChart(
                    visible(q or "(none)"), longest_wait, color="text-secondary", value=runtime, headline=_wait
                )
                for q in self.queues
            ]
            await box.mount_all(charts)
        for chart, series in zip(charts, self.queues.values()):
            chart.show(series)
