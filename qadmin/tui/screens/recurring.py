"""Page 6: the recurring schedules, each with its timing, next and last run and whether it is
enabled; enable, disable and run now (`ops.recurring`, audited), each confirmed first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Static

from qadmin.ops import Ops
from qadmin.recurring import RecurringEntry
from qadmin.text import plural, visible
from qadmin.tui.messages import OpFailed
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.text import ago, cell, compact, theme_style, ts


@dataclass
class SchedulesLoaded(Message):
    entries: list[RecurringEntry]
    #: the backend's clock when they were read: next runs are counted from it
    now: datetime


@dataclass
class ScheduleChanged(Message):
    """A confirmed change went through: what to tell the operator."""

    text: str


def moment(when: datetime) -> str:
    """A run's time, short enough for a column: month, day, hour and minute in UTC."""
    return when.astimezone(UTC).strftime("%m-%d %H:%MZ")


class RecurringScreen(QadminScreen):
    DEFAULT_CSS = """
    #recurring-summary { height: 1; padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    #recurring { height: 1fr; }
    """
    PAGE = "recurring"
    WHAT = "recurring schedules"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Last job", id="recurring.open"),
        Binding("e", "enable", "Enable", id="recurring.enable"),
        Binding("d", "disable", "Disable", id="recurring.disable"),
        Binding("g", "run_now", "Run now", id="recurring.run_now"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, RecurringEntry] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="recurring-summary")
        yield DataTable(id="recurring", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (
            ("state", "STATE"),
            ("name", "SCHEDULE"),
            ("timing", "TIMING"),
            ("class", "CLASS"),
            ("queue", "QUEUE"),
            ("next", "NEXT RUN"),
            ("last", "LAST RUN"),
            ("job", "LAST JOB"),
            ("source", "SOURCE"),
        ):
            table.add_column(label, key=key)
        table.focus()
        super().on_mount()

    def fetch(self, ops: Ops, token: int, request: Any) -> Iterable[Message]:
        now = ops.clock()
        yield SchedulesLoaded(ops.recurring.entries(), now)

    def on_schedules_loaded(self, message: SchedulesLoaded) -> None:
        message.stop()
        table = self.query_one(DataTable)
        now = message.now
        current = self.current_entry
        self.entries = {e.schedule.name: e for e in message.entries}
        table.clear()
        for entry in message.entries:
            s = entry.schedule
            state = (
                Text("enabled", style=theme_style(self.app, "text-success", bold=True))
                if s.enabled
                else Text("disabled", style=theme_style(self.app, "text-warning"))
            )
            nxt, last = entry.next_run(now), entry.last_run_at
            table.add_row(
                state,
                cell(s.name, 28),
                cell(s.timing, 26),
                cell(s.job_class, 28),
                cell(s.queue or "(its own)", 14),
                f"{moment(nxt)} ({ago(nxt, now)})" if nxt else "— (disabled)",
                f"{moment(last)} ({ago(last, now)})" if last else "never",
                cell("—" if entry.last_job_id is None else str(entry.last_job_id), 20),
                cell(s.source, 16),
                key=s.name,
            )
        if current is not None and current.schedule.name in self.entries:
            table.move_cursor(row=list(self.entries).index(current.schedule.name), animate=False)
        enabled = sum(1 for e in message.entries if e.schedule.enabled)
        summary = Text(f"{plural(len(message.entries), 'schedule')} · {enabled} enabled")
        if not message.entries:
            summary.append(" — declare them as [recurring.NAME] tables in qadmin.toml", style="dim")
        self.query_one("#recurring-summary", Static).update(summary)

    @property
    def current_entry(self) -> RecurringEntry | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return self.entries.get(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        entry = self.current_entry
        if entry is not None and entry.last_job_id is not None:
            self.app.open_job(entry.last_job_id)

    # --- changes: confirm, then apply in a thread, then report and refresh -------------------------
    def action_enable(self) -> None:
        self._ask("enable")

    def action_disable(self) -> None:
        self._ask("disable")

    def action_run_now(self) -> None:
        self._ask("run_now")

    def _ask(self, verb: str) -> None:
        entry = self.current_entry
        if entry is None or self.app.read_only:
            return
        s = entry.schedule
        name = visible(s.name)
        if verb == "run_now":
            body = Text(f"Enqueue one {visible(s.job_class)} job now")
            body.append(f" on queue {visible(s.queue)}" if s.queue else "")
            body.append(f" with args {compact(s.args)}" if s.args else "")
            body.append(". Its ticks go on as before" + ("" if s.enabled else " (it stays disabled)") + ".")
            title, yes = f"Run schedule {name} now?", "Run now"
        elif (verb == "enable") == s.enabled:
            self.app.notify(f"Schedule {name} is already {verb}d.", timeout=3, markup=False)
            return
        elif verb == "enable":
            title, yes = f"Enable schedule {name}?", "Enable"
            nxt = s.with_enabled(True).next_tick(self.app.ops.clock())
            body = Text(
                f"It enqueues {visible(s.job_class)} at every tick of {visible(s.timing)} again; next at {ts(nxt)}."
            )
        else:
            title, yes = f"Disable schedule {name}?", "Disable"
            body = Text("Its ticks enqueue nothing until it is enabled again; jobs it enqueued stay queued.")

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._apply(verb, s.name)

        self.app.push_screen(ConfirmScreen(title, body, yes_label=yes), confirmed)

    @work(thread=True, group="recurring", exit_on_error=False)
    def _apply(self, verb: str, name: str) -> None:
        recurring = self.app.ops.recurring
        try:
            if verb == "run_now":
                job = recurring.run_now(name).job
                text = f"Schedule {visible(name)} ran now: enqueued job {visible(str(job.id if job else '?'))}."
            else:
                (recurring.enable if verb == "enable" else recurring.disable)(name)
                text = f"Schedule {visible(name)} {verb}d."
        except Exception as exc:  # noqa: BLE001 - reported as a failed action
            self.post_message(OpFailed(f"Cannot {verb.replace('_', ' ')} {visible(name)}", exc, action=True))
            return
        self.post_message(ScheduleChanged(text))

    def on_schedule_changed(self, message: ScheduleChanged) -> None:
        message.stop()
        self.app.notify(message.text, timeout=5, markup=False)
        self.refresh_data(force=True)
