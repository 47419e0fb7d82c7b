"""The jobs table: rows keyed by job id, a multi-selection, updates in place."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from qadmin.job import Job, JobId, JobState
from qadmin.tui.text import args_of, cell, state_text, theme_style, when

#: column -> label
LABELS = {
    "sel": " ",
    "id": "ID",
    "state": "STATE",
    "queue": "QUEUE",
    "class": "CLASS",
    "args": "ARGS",
    "when": "WHEN",
    "pri": "PRI",
    "att": "ATT",
    "error": "ERROR",
}
#: widths of the columns that do not stretch
FIXED = {"sel": 1, "id": 7, "state": 9, "queue": 10, "when": 11, "pri": 3, "att": 3}
#: terminal widths from which the error column, then priority and attempts, are shown
SHOW_ERROR_FROM, SHOW_COUNTS_FROM = 100, 150
#: selection mark
MARK = "●"


def plan_columns(width: int, id_width: int = 7) -> dict[str, int]:
    """Column widths for a table `width` cells wide: narrow terminals drop the least needed
    columns instead of scrolling sideways."""
    fixed = {**FIXED, "id": max(4, min(id_width, 24))}
    keys = ["sel", "id", "state", "queue", "class", "args", "when"]
    if width >= SHOW_COUNTS_FROM:
        keys += ["pri", "att"]
    if width >= SHOW_ERROR_FROM:
        keys.append("error")
    # each column is padded by one cell on both sides; two more for the scrollbar
    flex = width - 2 - 2 * len(keys) - sum(fixed.get(k, 0) for k in keys)
    plan = {k: fixed[k] for k in keys if k in fixed}
    plan["class"] = int(min(36, max(10, flex * 0.3)))
    if "error" in keys:
        plan["args"] = int(min(48, max(10, flex * 0.32)))
        plan["error"] = max(10, flex - plan["class"] - plan["args"])
    else:
        plan["args"] = max(10, flex - plan["class"])
    return {k: plan[k] for k in keys}


class JobTable(DataTable[Text | str]):
    """Shows jobs; `selected` holds the ids marked with space, in the order they were marked."""

    # rows, not columns, are what home and end should reach (the columns always fit)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First job", show=False),
        Binding("end", "scroll_bottom", "Last loaded job", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.jobs: dict[str, Job] = {}
        self.selected: dict[str, JobId] = {}
        self._rows: dict[str, tuple[Text | str, ...]] = {}
        self.plan: dict[str, int] = {}
        self.id_width = 4
        self._now: datetime | None = None

    def on_resize(self) -> None:
        plan = plan_columns(self.size.width or 80, self.id_width)
        if plan == self.plan:
            return
        self.plan = plan
        jobs = list(self.jobs.values())
        current = self.current_key
        self.clear(columns=True)
        for key, width in plan.items():
            self.add_column(LABELS[key], key=key, width=width)
        self.jobs, self._rows = {}, {}
        if jobs and self._now is not None:
            self.show_jobs(jobs, self._now)
            if current in self.jobs:
                self.move_cursor(row=list(self.jobs).index(current), animate=False)

    # --- data --------------------------------------------------------------------------------
    def _cells(self, job: Job, now: datetime) -> tuple[Text | str, ...]:
        key, plan = str(job.id), self.plan
        mark = Text(MARK, style=theme_style(self.app, "text-accent", bold=True)) if key in self.selected else ""
        class_name = str(job.class_name or "")
        if len(class_name) > plan.get("class", 30):
            class_name = class_name.rsplit(".", 1)[-1]  # the module path matters least when space is short
        state = state_text(self.app, job)
        state.no_wrap, state.overflow = True, "ellipsis"
        cells: dict[str, Text | str] = {
            "sel": mark,
            "id": cell(key, 40),
            "state": state,
            "queue": cell(job.queue or "", 10),
            "class": cell(class_name, plan.get("class", 30)),
            "args": cell(args_of(job), plan.get("args", 30)),
            "when": cell(when(job, now)),
            "pri": cell(job.priority),
            "att": cell(job.attempts),
            "error": self._error(job, plan.get("error", 40)),
        }
        return tuple(cells[k] for k in plan)

    def _error(self, job: Job, width: int) -> Text:
        """A failed job's error as it is; the error a retried job kept from its last attempt is
        history (the job is not failing): muted, and labelled as such."""
        message = job.error_message or ""
        if not message or job.state is JobState.FAILED:
            return cell(message, width)
        return cell(f"last attempt: {message}", width, theme_style(self.app, "text-muted"))

    def show_jobs(self, jobs: list[Job], now: datetime, *, append: bool = False) -> None:
        """Show `jobs` (after the current rows when appending), keeping the cursor on its job."""
        self._now = now
        widest = max((len(str(j.id)) for j in jobs), default=0)
        if widest > self.id_width or not self.plan:
            self.id_width = max(self.id_width, widest)
            self.on_resize()
        if append:
            for job in jobs:
                key = str(job.id)
                if key in self.jobs:
                    continue
                self.jobs[key] = job
                self._rows[key] = cells = self._cells(job, now)
                self.add_row(*cells, key=key)
            return
        keys = [str(j.id) for j in jobs]
        if keys == list(self.jobs):
            # same rows in the same order: touch only the cells that changed (no flicker, no jump)
            for job in jobs:
                key = str(job.id)
                self.jobs[key] = job
                cells = self._cells(job, now)
                old = self._rows.get(key)
                for column, new, before in zip(self.plan, cells, old or (None,) * len(cells)):
                    if str(new) != str(before) or (isinstance(new, Text) and new != before):
                        self.update_cell(key, column, new)
                self._rows[key] = cells
            return
        current = self.current_key
        index = self.cursor_row
        self.clear()
        self.jobs, self._rows = {}, {}
        for job in jobs:
            key = str(job.id)
            self.jobs[key] = job
            self._rows[key] = cells = self._cells(job, now)
            self.add_row(*cells, key=key)
        self.selected = {k: v for k, v in self.selected.items() if k in self.jobs}
        if current in self.jobs:
            self.move_cursor(row=keys.index(current), animate=False)
        elif self.row_count:
            self.move_cursor(row=min(index, self.row_count - 1), animate=False)

    def redraw(self) -> None:
        """Draw every row again (the theme changed: the cells' colours come from it)."""
        if self._now is not None and self.jobs:
            current = self.current_key
            jobs = list(self.jobs.values())
            self.clear()
            self.jobs, self._rows = {}, {}
            self.show_jobs(jobs, self._now)
            if current in self.jobs:
                self.move_cursor(row=list(self.jobs).index(current), animate=False)

    # --- cursor and selection ----------------------------------------------------------------
    @property
    def current_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except CellDoesNotExist:
            return None

    @property
    def current(self) -> Job | None:
        key = self.current_key
        return self.jobs.get(key) if key else None

    def toggle_current(self) -> bool:
        job = self.current
        if job is None:
            return False
        key = str(job.id)
        if key in self.selected:
            del self.selected[key]
        else:
            self.selected[key] = job.id
        self._mark(key)
        return True

    def select_all(self) -> None:
        for key, job in self.jobs.items():
            if key not in self.selected:
                self.selected[key] = job.id
                self._mark(key)

    def clear_selection(self) -> None:
        keys = list(self.selected)
        self.selected.clear()
        for key in keys:
            if key in self.jobs:
                self._mark(key)

    def _mark(self, key: str) -> None:
        mark = Text(MARK, style=theme_style(self.app, "text-accent", bold=True)) if key in self.selected else ""
        self.update_cell(key, "sel", mark)
        if key in self._rows:
            self._rows[key] = (mark,) + self._rows[key][1:]
