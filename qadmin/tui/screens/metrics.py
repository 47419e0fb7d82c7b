"""Page 8: each job class over a window (`ops.insight.class_metrics`): runs, failures, failure rate,
p50/p95/p99 and mean runtime, and the trend against the window before. `s` steps through the
sort columns, `S` turns the order round, a click on a header sorts by it; enter lists the class's
jobs on the jobs page."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from qadmin.filters import JobFilter, last_component
from qadmin.insight import METRIC_SORTS, TREND_POINTS, ClassMetrics, failure_level
from qadmin.ops import Ops
from qadmin.text import plural, visible
from qadmin.tui.figures import (
    RUNS_FALL,
    RUNS_RISE,
    count,
    rate,
    rate_change,
    runs_change,
    runtime,
)
from qadmin.tui.screens.insight import InsightScreen, Narrowing, range_bindings
from qadmin.tui.text import cell, names, theme_style

#: column key -> header; a key in METRIC_SORTS is a sort
COLUMNS = {
    "class": "CLASS",
    "runs": "RUNS",
    "failed": "FAILED",
    "retried": "RETRIED",
    "failure_rate": "FAIL%",
    "p50": "P50",
    "p95": "P95",
    "p99": "P99",
    "mean": "MEAN",
    #: the trend against the window before: the failure rate's change, and the runs'
    "fail_trend": "FAIL Δ",
    "runs_trend": "RUNS Δ",
    "queues": "QUEUES",
}
#: terminal widths below this show a class by its last component (`SendEmail`), so that the
#: numbers fit beside it
FULL_NAMES_FROM = 120
#: how a sort is named in the summary
SORT_NAMES = {"failure_rate": "failure rate"}


@dataclass(frozen=True)
class MetricsRequest:
    narrowing: Narrowing
    sort: str


@dataclass
class MetricsLoaded(Message):
    token: int
    request: MetricsRequest
    metrics: list[ClassMetrics]


def natural(column: str) -> str:
    """A column's first sort: names A to Z, numbers the largest first."""
    return column if column == "class" else f"-{column}"


class MetricsScreen(InsightScreen):
    DEFAULT_CSS = """
    #metrics-summary { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    #metrics { height: 1fr; }
    """
    PAGE = "metrics"
    WHAT = "class metrics"
    RANGE_LABEL = "window"
    CLASS_BOX = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Class's jobs", id="metrics.open"),
        Binding("s", "sort", "Sort", id="metrics.sort"),
        Binding("S", "reverse", "Reverse sort", show=False, id="metrics.reverse"),
        *range_bindings("metrics"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort = natural("runs")
        self.metrics: dict[str, ClassMetrics] = {}
        #: what the rows shown answer (the summary names it)
        self.shown: MetricsRequest | None = None

    def compose_body(self) -> ComposeResult:
        yield from self.compose_controls()
        yield Static("waiting for the backend…", id="metrics-summary")
        yield DataTable(id="metrics", cursor_type="row", zebra_stripes=True)

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#metrics", DataTable)

    def main_widget(self) -> Widget:
        return self.table

    def on_mount(self) -> None:
        for key, label in COLUMNS.items():
            self.table.add_column(label, key=key)
        self._show_headers()
        super().on_mount()

    def request(self) -> MetricsRequest:
        return MetricsRequest(self.narrowing, self.sort)

    def fetch(self, ops: Ops, token: int, request: MetricsRequest) -> Iterable[Message]:
        window = request.narrowing
        yield MetricsLoaded(
            token, request, ops.insight.class_metrics(window.range, sort=request.sort, queue=window.queue)
        )

    def show_waiting(self) -> None:
        self._show_headers()
        self.query_one("#metrics-summary", Static).update(f"loading the last {self.narrowing.range}…")

    def redraw(self) -> None:
        if self.shown is not None:
            self._show(self.shown, list(self.metrics.values()))

    def on_resize(self) -> None:
        self.redraw()

    def on_metrics_loaded(self, message: MetricsLoaded) -> None:
        message.stop()
        if self.answers_current(message.token):
            self._show(message.request, message.metrics)

    def _show(self, request: MetricsRequest, metrics: list[ClassMetrics]) -> None:
        table = self.table
        current = self.current_class
        self.shown = request
        self.metrics = {m.job_class: m for m in metrics}
        self.learn(queues=(q for m in metrics for q in m.queues), classes=self.metrics)
        table.clear()
        for m in metrics:
            table.add_row(*self._cells(m), key=m.job_class)
        if current in self.metrics:
            table.move_cursor(row=list(self.metrics).index(current), animate=False)
        self._show_summary(request, metrics)

    def _cells(self, m: ClassMetrics) -> list[Text]:
        app = self.app
        muted = theme_style(app, "text-muted")
        error = theme_style(app, "text-error", bold=True)
        warning = theme_style(app, "text-warning")
        rate_style = {"high": error, "notable": warning, "low": muted}[failure_level(m.failure_rate)]
        change, ratio = m.failure_rate_change, m.runs_change
        if change is not None and change >= TREND_POINTS:
            fail_trend = Text(f"▲ {rate_change(change)}", style=error)
        elif change is not None and change <= -TREND_POINTS:
            fail_trend = Text(f"▼ {rate_change(change)}", style=theme_style(app, "text-success"))
        else:
            fail_trend = Text(rate_change(change), style=muted)
        if ratio is None or ratio >= RUNS_RISE:
            runs_trend = Text(f"▲ {runs_change(ratio)}", style=theme_style(app, "text-accent", bold=True))
        elif ratio <= RUNS_FALL:
            runs_trend = Text(f"▼ {runs_change(ratio)}")
        else:
            runs_trend = Text(runs_change(ratio), style=muted)
        return [
            cell(m.job_class if self.size.width >= FULL_NAMES_FROM else last_component(m.job_class), 40, "bold"),
            Text(count(m.runs), justify="right"),
            Text(count(m.failed), style=error if m.failed else muted, justify="right"),
            Text(count(m.retried), style=warning if m.retried else muted, justify="right"),
            Text(rate(m.failure_rate), style=rate_style, justify="right"),
            *(Text(runtime(v), justify="right") for v in (m.p50, m.p95, m.p99, m.mean)),
            fail_trend,
            runs_trend,
            cell(names(m.queues) or "—", 30, muted),
        ]

    def _show_summary(self, request: MetricsRequest, metrics: list[ClassMetrics]) -> None:
        window = request.narrowing
        where = f" on queue {visible(window.queue)}" if window.queue else ""
        if not metrics:
            text = Text(f"No runs recorded in the last {window.range}{where}", style="bold")
            text.append(" — workers record what they run, minute by minute; ] and [ change the window")
        else:
            column = request.sort.lstrip("-")
            order = "↓" if request.sort.startswith("-") else "↑"
            runs = sum(m.runs for m in metrics)
            text = Text(f"{plural(len(metrics), 'class', 'classes')} · {count(runs)} runs in the last {window.range}")
            text.append(where)
            text.append(f" · sorted by {SORT_NAMES.get(column, column)} {order} (s, S or a header)")
        self.query_one("#metrics-summary", Static).update(text)

    def _show_headers(self) -> None:
        column, order = self.sort.lstrip("-"), "▼" if self.sort.startswith("-") else "▲"
        for shown in self.table.columns.values():
            label = COLUMNS[str(shown.key.value)]
            shown.label = Text(f"{label} {order}" if shown.key.value == column else label)
        self.table.refresh()

    # --- sorting -----------------------------------------------------------------------------
    def sort_by(self, sort: str) -> None:
        if sort != self.sort:
            self.sort = sort
            self.reload()

    def action_sort(self) -> None:
        column = self.sort.lstrip("-")
        self.sort_by(natural(METRIC_SORTS[(METRIC_SORTS.index(column) + 1) % len(METRIC_SORTS)]))

    def action_reverse(self) -> None:
        self.sort_by(self.sort[1:] if self.sort.startswith("-") else f"-{self.sort}")

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = str(event.column_key.value)
        if column not in METRIC_SORTS:
            self.app.notify(f"{COLUMNS[column]} is not a sort: {', '.join(METRIC_SORTS)} are.", timeout=3)
        elif column == self.sort.lstrip("-"):
            self.action_reverse()
        else:
            self.sort_by(natural(column))

    # --- the class's jobs --------------------------------------------------------------------
    @property
    def current_class(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        job_class = self.current_class
        if job_class is not None:
            queue = self.shown.narrowing.queue if self.shown is not None else None
            self.app.show_jobs(JobFilter(class_name=job_class, queues=(queue,) if queue else ()))
