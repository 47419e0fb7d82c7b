"""Page 1: every queue's counts by state, totals, throughput of the last hour, workers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Label, Sparkline, Static

from qadmin.alert_rules import Incident
from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.model import Stats
from qadmin.ops import Ops
from qadmin.text import plural, visible
from qadmin.tui.messages import StatsLoaded
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.text import STATE_COLOR, ago, cell, names, theme_style

#: the per-state columns of the queue table
STATE_COLUMNS = ("pending", "scheduled", "locked", "stale", "failed", "finished")
#: minutes in the throughput sparkline
SPARK_MINUTES = 60


@dataclass
class IncidentsLoaded(Message):
    """The open alert incidents (`ops.alerts`), shown above the totals until they resolve."""

    incidents: list[Incident]


class OverviewScreen(QadminScreen):
    PAGE = "overview"
    WHAT = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_queue", "Queue's jobs", id="overview.open"),
        Binding("p", "pause", "Pause/resume", id="overview.pause"),
        Binding("R", "retry_all", "Retry queue's failed", id="overview.retry_all"),
        Binding("U", "unlock_stale", "Unlock queue's stale", id="overview.unlock_stale"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stats: Stats | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="overview"):
            yield Static("", id="alerts")
            yield Static("waiting for the backend…", id="totals")
            with Horizontal(id="throughput"):
                yield Label("throughput, last hour", id="spark-label")
                yield Sparkline([], id="spark")
                yield Label("", id="spark-max")
            yield DataTable(id="queues", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#queues", DataTable)
        table.add_column("QUEUE", key="queue")
        for state in STATE_COLUMNS:
            table.add_column(state.upper(), key=state)
        table.add_column("", key="status")
        table.focus()
        self.query_one("#alerts", Static).display = False
        super().on_mount()

    def redraw(self) -> None:
        if self.stats is not None:
            self.on_stats_loaded(StatsLoaded(self.stats))

    def fetch(self, ops: Ops, token: int, request: object) -> Iterable[Message]:
        # the incidents first: a load counts as answered (the status line's "showing data from")
        # only once all its reads are done, so none may follow the one that puts data on screen
        incidents = ops.alerts.open_incidents()
        yield StatsLoaded(ops.stats())
        yield IncidentsLoaded(incidents)

    def on_incidents_loaded(self, message: IncidentsLoaded) -> None:
        banner = self.query_one("#alerts", Static)
        banner.display = bool(message.incidents)
        now = self.app.ops.clock()
        lines = Text()
        for incident in message.incidents:
            if lines:
                lines.append("\n")
            lines.append(f"alert {visible(incident.rule)} firing", style=theme_style(self.app, "text-error", bold=True))
            lines.append(f" since {ago(incident.opened_at, now)}: {visible(incident.details)}")
        banner.update(lines)

    def on_stats_loaded(self, message: StatsLoaded) -> None:
        self.stats = stats = message.stats
        now = self.app.ops.clock()
        totals = stats.totals()
        app = self.app
        grid = Table.grid(padding=(0, 3))
        line1 = Text()
        for state in ("pending", "scheduled", "locked", "failed"):
            n = totals.get(state, 0)
            line1.append(f"{n} ", style=theme_style(app, STATE_COLOR[state], bold=True))
            line1.append(state)
            if state == "locked" and totals.get("stale"):
                line1.append(f" ({totals['stale']} stale)", style=theme_style(app, "text-warning", bold=True))
            line1.append("   ")
        if totals.get("waiting"):  # shown only where jobs wait for a service (the jobs page's Waiting tab)
            line1.append(f"{totals['waiting']} ", style=theme_style(app, STATE_COLOR["waiting"], bold=True))
            line1.append("waiting   ")
        line2 = Text()
        line2.append(f"{stats.processed}", style="bold")
        line2.append(" processed   ")
        line2.append(f"{stats.failed}", style=theme_style(app, "text-error", bold=True) if stats.failed else "bold")
        line2.append(" failed   ")
        line2.append(f"{stats.workers}", style="bold")
        line2.append(" live worker" + ("" if stats.workers == 1 else "s") + "   ")
        line2.append("oldest pending ")
        line2.append(ago(stats.oldest_pending_at, now) or "—", style="bold")
        if stats.paused:
            line2.append("   paused: ")
            line2.append(visible(names(stats.paused)), style=theme_style(app, "text-warning", bold=True))
        grid.add_row(line1)
        grid.add_row(line2)
        for why in stats.unreadable.values():  # a Redis key of the wrong type, a counter that is no number
            grid.add_row(Text("unreadable: " + why, style=theme_style(app, "text-error", bold=True)))
        self.query_one("#totals", Static).update(grid)
        self._show_throughput(stats, now)
        self._show_queues(stats)

    def _show_throughput(self, stats: Stats, now: object) -> None:
        start = now.replace(second=0, microsecond=0) - timedelta(minutes=SPARK_MINUTES - 1)  # type: ignore[attr-defined]
        buckets = [0] * SPARK_MINUTES
        for minute, processed, _failed in stats.throughput:
            index = int((minute - start).total_seconds() // 60)
            if 0 <= index < SPARK_MINUTES:
                buckets[index] += processed
        self.query_one("#spark", Sparkline).data = buckets
        total = sum(buckets)
        self.query_one("#spark-max", Label).update(Text(f"{plural(total, 'job')} · peak {max(buckets)}/min"))

    def _show_queues(self, stats: Stats) -> None:
        table = self.query_one("#queues", DataTable)
        app = self.app
        current = self.current_queue
        rows: dict[str, list[object]] = {}
        for name, counts in stats.queues.items():
            cells: list[object] = [cell(name or "(none)", 60, "bold")]
            for state in STATE_COLUMNS:
                n = counts.get(state, 0)
                style = (
                    theme_style(app, STATE_COLOR[state], bold=state in ("failed", "stale"))
                    if n
                    else theme_style(app, "text-muted")
                )
                cells.append(Text(str(n), style=style, justify="right"))
            paused = name in stats.paused
            cells.append(Text("paused", style=theme_style(app, "text-warning", bold=True)) if paused else "")
            rows[name] = cells
        if [key.value for key in table.rows] == list(rows):
            # the same queues: update the cells in place, so a refresh neither flickers nor shows
            # the table between a clear and its next layout (columns back at their headers' width)
            columns = list(table.columns)
            for name, cells in rows.items():
                for column, value in zip(columns, cells):
                    table.update_cell(name, column, value, update_width=True)
        else:
            table.clear()
            for name, cells in rows.items():
                table.add_row(*cells, key=name)
        if current is not None and current in stats.queues:
            table.move_cursor(row=list(stats.queues).index(current), animate=False)

    # --- actions -----------------------------------------------------------------------------
    @property
    def current_queue(self) -> str | None:
        table = self.query_one("#queues", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_queue()

    def action_open_queue(self) -> None:
        queue = self.current_queue
        if queue is not None:
            self.app.show_jobs(JobFilter(queues=(queue,)))

    def action_pause(self) -> None:
        queue = self.current_queue
        if queue is not None:
            self.app.toggle_pause(queue)

    def action_retry_all(self) -> None:
        queue = self.current_queue
        if queue is not None:
            self.app.start_bulk("retry", JobFilter(states=frozenset({JobState.FAILED}), queues=(queue,)))

    def action_unlock_stale(self) -> None:
        queue = self.current_queue
        if queue is not None:
            self.app.start_bulk("unlock", JobFilter(queues=(queue,), stale_only=True))
