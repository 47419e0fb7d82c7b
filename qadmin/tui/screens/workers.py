"""Page 4: workers, what each is running, since when, its last heartbeat; stale ones marked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Static

from qadmin.job import WorkerInfo
from qadmin.ops import Ops
from qadmin.tui.messages import WorkersLoaded
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.text import ago, cell, names, theme_style


class WorkersScreen(QadminScreen):
    PAGE = "workers"
    WHAT = "workers"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Current job", id="workers.open")]

    def __init__(self) -> None:
        super().__init__()
        self.infos: dict[str, WorkerInfo] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="workers-summary")
        yield DataTable(id="workers", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (
            ("status", "STATUS"),
            ("name", "WORKER"),
            ("queues", "QUEUES"),
            ("job", "JOB"),
            ("since", "SINCE"),
            ("beat", "HEARTBEAT"),
            ("done", "PROCESSED"),
            ("failed", "FAILED"),
        ):
            table.add_column(label, key=key)
        table.focus()
        super().on_mount()

    def fetch(self, ops: Ops, token: int, request: Any) -> Iterable[Message]:
        yield WorkersLoaded(ops.workers())

    def on_workers_loaded(self, message: WorkersLoaded) -> None:
        message.stop()
        table = self.query_one(DataTable)
        now = self.app.ops.clock()
        current = self.current_worker
        self.infos = {w.name: w for w in message.workers}
        table.clear()
        for w in message.workers:
            status = (
                Text("stale", style=theme_style(self.app, "text-warning", bold=True))
                if w.stale
                else Text("live", style=theme_style(self.app, "text-success", bold=True))
            )
            table.add_row(
                status,
                cell(w.name, 40),
                cell(names(w.queues or ()) or "—", 24),
                cell("—" if w.current_job is None else str(w.current_job), 40),
                ago(w.job_started_at, now) if w.current_job is not None else "",
                ago(w.heartbeat_at, now) or "never",
                cell(w.processed),
                cell(w.failed),
                key=w.name,
            )
        if current is not None and current.name in self.infos:
            table.move_cursor(row=list(self.infos).index(current.name), animate=False)
        stale = sum(1 for w in message.workers if w.stale)
        summary = Text(f"{len(message.workers) - stale} live")
        if stale:
            summary.append(f" · {stale} stale", style=theme_style(self.app, "text-warning", bold=True))
            summary.append(" (no heartbeat, or holding a lock past the max run time)")
        self.query_one("#workers-summary", Static).update(summary)

    @property
    def current_worker(self) -> WorkerInfo | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return self.infos.get(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        worker = self.current_worker
        if worker is not None and worker.current_job is not None:
            self.app.open_job(worker.current_job)
