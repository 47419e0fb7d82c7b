"""Page 2: the jobs of one state, filtered by queue, class and a search on the arguments.

Rows arrive a page at a time (keyset paging through `ops.list_jobs(cursor=...)`), so a queue of
a million jobs opens as fast as one of ten; the next page loads when the cursor nears the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static

from qadmin.filters import JobFilter
from qadmin.job import Job, JobState
from qadmin.model import Page
from qadmin.ops import BulkResult, Ops
from qadmin.text import plural, visible
from qadmin.tui.messages import CountLoaded, JobsLoaded, NamesLoaded, OpFailed
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.screens.enqueue import EnqueueScreen
from qadmin.tui.suggest import class_suggester
from qadmin.tui.text import short, theme_style
from qadmin.tui.widgets.job_table import JobTable
from qadmin.tui.widgets.state_bar import StateBar

#: the state bar: (state key, label)
STATE_TABS = (
    ("all", "All"),
    ("pending", "Pending"),
    ("scheduled", "Scheduled"),
    ("locked", "Locked"),
    ("stale", "Stale"),
    ("failed", "Failed"),
    ("waiting", "Waiting"),
    ("finished", "Finished"),
    ("cancelled", "Cancelled"),
)
#: sort orders the backends page by, and how the summary names them
SORTS = (
    ("id", "oldest first"),
    ("-id", "newest first"),
    ("priority", "priority"),
    ("run_at", "run at"),
    ("-failed_at", "latest failure"),
)
#: rows per page
PAGE = 100
#: rows re-read by each refresh at most; rows loaded further down stay as they were read
REFRESH_ROWS = 1000
#: the next page loads when the cursor is this close to the last row
PREFETCH = 20
#: seconds of typing pause before a filter box applies
DEBOUNCE = 0.4


@dataclass(frozen=True)
class Request:
    selection: JobFilter
    sort: str
    #: rows to (re)read from the top; 0 re-reads only the count
    limit: int


class JobsScreen(QadminScreen):
    PAGE = "jobs"
    WHAT = "jobs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", show=False, id="jobs.open"),
        Binding("space", "toggle_select", "Select", id="jobs.select"),
        Binding("r", "retry", "Retry", id="jobs.retry"),
        Binding("d", "delete", "Delete", id="jobs.delete"),
        Binding("u", "unlock", "Unlock", id="jobs.unlock"),
        Binding("x", "dequeue", "Dequeue", id="jobs.dequeue"),
        Binding("n", "enqueue", "New job", show=False, id="jobs.enqueue"),
        Binding("s", "sort", "Sort", id="jobs.sort"),
        Binding("right_square_bracket", "next_state", "State", key_display="]", id="jobs.next_state"),
        Binding(
            "left_square_bracket", "prev_state", "Previous state", show=False, key_display="[", id="jobs.prev_state"
        ),
        Binding("slash", "search", "Search", key_display="/", id="jobs.search"),
        Binding("f", "focus_filters", "Filter by queue/class", show=False, id="jobs.filter"),
        Binding("c", "clear_filters", "Clear filters", show=False, id="jobs.clear"),
        Binding("p", "pause", "Pause/resume queue", show=False, id="jobs.pause"),
        Binding("R", "retry_all", "Retry all matching", show=False, id="jobs.retry_all"),
        Binding("D", "delete_all", "Delete all matching", show=False, id="jobs.delete_all"),
        Binding("U", "unlock_stale", "Unlock stale matching", show=False, id="jobs.unlock_stale"),
        Binding("ctrl+a", "select_all", "Select all loaded", show=False, id="jobs.select_all"),
        Binding("escape", "escape", "Back to table / clear selection", show=False, id="jobs.escape"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selection = JobFilter()
        #: an error group's message (set from the errors page; no box of its own)
        self.error: str | None = None
        #: an error group's fingerprint (likewise)
        self.fingerprint: str | None = None
        self.sort = "id"
        self.count: int | None = None
        self.queues: list[str] = []
        self.paused: list[str] = []
        self._filter_token = 0
        self._next_cursor: str | None = None
        self._paging = False
        self._debounce: Timer | None = None
        self._pending: JobFilter | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="filters"):
            yield Select([], prompt="all queues", id="queue", compact=True)
            yield Input(placeholder="class", id="class", compact=True)
            yield Input(placeholder="search arguments (/)", id="search", compact=True)
        yield StateBar(STATE_TABS, id="states")
        yield Static("", id="summary")
        yield JobTable(id="jobs")

    @property
    def table(self) -> JobTable:
        return self.query_one(JobTable)

    def on_mount(self) -> None:
        self.table.focus()
        pending, self._pending = self._pending, None
        self.selection = pending if pending is not None else self.build_filter()
        super().on_mount()
        self._filter_token = self.token
        self._show_suggestions()
        self._load_names()
        if pending is not None:
            self._show_filter(pending)

    # --- the filter --------------------------------------------------------------------------
    def build_filter(self) -> JobFilter:
        tab = self.query_one(StateBar).active
        queue = self.query_one("#queue", Select).value
        class_name = self.query_one("#class", Input).value.strip() or None
        search = self.query_one("#search", Input).value.strip() or None
        states: frozenset[JobState] = frozenset()
        if tab == "stale":
            states = frozenset({JobState.LOCKED})
        elif tab != "all":
            states = frozenset({JobState(tab)})
        return JobFilter(
            states=states,
            queues=(str(queue),) if queue != Select.NULL else (),
            class_name=class_name,
            search=search,
            stale_only=tab == "stale",
            error=self.error,
            fingerprint=self.fingerprint,
        )

    def set_filter(self, selection: JobFilter) -> None:
        """Show the jobs `selection` matches (other pages call this to open a queue or error group)."""
        if not self.is_mounted:
            self._pending = selection
            return
        self._show_filter(selection)
        self.apply_filters()

    def _show_filter(self, selection: JobFilter) -> None:
        if selection.stale_only:
            tab = "stale"
        elif len(selection.states) == 1:
            tab = next(iter(selection.states)).value
        else:
            tab = "all"
        self.query_one(StateBar).active = tab
        queue = selection.queues[0] if selection.queues else None
        if queue is not None and queue not in self.queues:
            self._set_queue_options(self.queues + [queue])
        self.query_one("#queue", Select).value = queue if queue is not None else Select.NULL
        self.query_one("#class", Input).value = selection.class_name or ""
        self.query_one("#search", Input).value = selection.search or ""
        self.error = selection.error
        self.fingerprint = selection.fingerprint

    def apply_filters(self) -> None:
        """Reload from the first page if the filter or the sort changed."""
        selection = self.build_filter()
        if selection == self.selection and self._filter_token:
            return
        self.selection = selection
        self._reload()

    def _reload(self) -> None:
        self.table.clear_selection()
        self.table.show_jobs([], self.app.ops.clock())
        self.count, self._next_cursor, self._paging = None, None, False
        self.refresh_data(force=True)
        self._filter_token = self.token
        self._show_summary()

    def on_state_bar_changed(self, event: StateBar.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self.apply_filters()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.apply_filters()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE, self.apply_filters)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply_filters()
        self.table.focus()

    def redraw(self) -> None:
        self.table.redraw()
        self._show_summary()

    # --- loading -----------------------------------------------------------------------------
    def request(self) -> Request:
        loaded = self.table.row_count
        limit = max(PAGE, loaded) if loaded <= REFRESH_ROWS else 0
        return Request(self.selection, self.sort, limit)

    def fetch(self, ops: Ops, token: int, request: Request) -> Iterable[Message]:
        if request.limit:
            page = ops.list_jobs(request.selection, limit=request.limit, sort=request.sort)
            yield JobsLoaded(token, ops.redaction.page(page), append=False)
        count = ops.count(request.selection)
        queues = ops.queues()
        yield CountLoaded(token, count, [q.name for q in queues], [q.name for q in queues if q.paused])

    @work(thread=True, group="page", exit_on_error=False)
    def load_more(self, token: int, selection: JobFilter, sort: str, cursor: str) -> None:
        try:
            ops = self.app.ops
            page = ops.redaction.page(ops.list_jobs(selection, limit=PAGE, cursor=cursor, sort=sort))
        except Exception as exc:  # noqa: BLE001 - shown on the status line; the loaded rows stay
            self.post_message(OpFailed("next page", exc))
            self.post_message(JobsLoaded(token, Page([], cursor), append=True))
            return
        self.post_message(JobsLoaded(token, page, append=True))

    def on_jobs_loaded(self, message: JobsLoaded) -> None:
        message.stop()
        if message.token < self._filter_token:
            return  # an answer to a filter or sort that is no longer shown
        self.table.show_jobs(message.page.jobs, self.app.ops.clock(), append=message.append)
        self._learn_classes(message.page.jobs)
        self._next_cursor = message.page.next_cursor
        if message.append:
            self._paging = False
        self._show_summary()
        if message.page.jobs:
            self._maybe_page()

    def on_count_loaded(self, message: CountLoaded) -> None:
        message.stop()
        if message.token < self._filter_token:
            return
        self.count, self.paused = message.count, message.paused
        self.app.learn_names(queues=message.queues)
        if message.queues != self.queues:
            self._set_queue_options(message.queues)
        self._show_summary()

    @work(thread=True, group="names", exclusive=True, exit_on_error=False)
    def _load_names(self) -> None:
        """The names the backend knows, beyond the jobs listed so far (once per visit)."""
        ops = self.app.ops
        try:
            self.post_message(NamesLoaded(ops.queue_names(), ops.class_names()))
        except Exception as exc:  # noqa: BLE001 - on the status line; completion keeps the names seen
            self.post_message(OpFailed("names for completion", exc))

    def on_names_loaded(self, message: NamesLoaded) -> None:
        message.stop()
        if self.app.learn_names(message.queues, message.classes):
            self._show_suggestions()

    def _learn_classes(self, jobs: Iterable[Job]) -> None:
        """The class box completes the class names known (right arrow accepts)."""
        if self.app.learn_names(classes=(job.class_name for job in jobs if job.decodable)):
            self._show_suggestions()

    def _show_suggestions(self) -> None:
        self.query_one("#class", Input).suggester = class_suggester(self.app.known_classes)

    def _set_queue_options(self, queues: list[str]) -> None:
        select = self.query_one("#queue", Select)
        current = select.value
        self.queues = list(queues)
        names = sorted(set(queues) | ({str(current)} if current != Select.NULL else set()))
        select.set_options([(Text(visible(name) if name else "(none)"), name) for name in names])
        if current != Select.NULL:
            select.value = current

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._maybe_page()

    def _maybe_page(self) -> None:
        table = self.table
        if self._next_cursor and not self._paging and table.cursor_row >= table.row_count - PREFETCH:
            self._paging = True
            self.load_more(self.token, self.selection, self.sort, self._next_cursor)

    def _show_summary(self) -> None:
        app, table = self.app, self.table
        text = Text()
        loaded = table.row_count
        if self.count is None:
            text.append(f"{loaded}+ jobs" if self._next_cursor else plural(loaded, "job"), style="bold")
        else:
            text.append(plural(self.count, "job"), style="bold")
            if loaded < self.count:
                text.append(f" ({loaded} loaded, more as you scroll)")
        text.append(f" · sort: {dict(SORTS)[self.sort]}")
        if table.selected:
            text.append(f" · {len(table.selected)} selected", style=theme_style(app, "text-accent", bold=True))
        if self.error is not None:
            text.append(" · error: ", style=theme_style(app, "text-error"))
            text.append(short(self.error, 60))
            text.append(" (c clears)")
        if self.fingerprint is not None:
            text.append(f" · error group {self.fingerprint}", style=theme_style(app, "text-error"))
            text.append(" (c clears)")
        self.query_one("#summary", Static).update(text)

    # --- navigation and selection --------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        job = self.table.current
        if job is not None:
            self.app.open_job(job.id)

    def action_toggle_select(self) -> None:
        if self.table.toggle_current():
            self.table.action_cursor_down()
            self._show_summary()

    def action_select_all(self) -> None:
        self.table.select_all()
        self._show_summary()

    def action_escape(self) -> None:
        if self.focused is not self.table:
            self.table.focus()
        else:
            self.table.clear_selection()
            self._show_summary()

    def action_sort(self) -> None:
        keys = [key for key, _ in SORTS]
        self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        self._reload()

    def action_next_state(self) -> None:
        self.query_one(StateBar).step(1)

    def action_prev_state(self) -> None:
        self.query_one(StateBar).step(-1)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_filters(self) -> None:
        self.query_one("#queue", Select).focus()

    def action_clear_filters(self) -> None:
        self.error = self.fingerprint = None
        self._show_filter(JobFilter(states=self.selection.states, stale_only=self.selection.stale_only))
        self.apply_filters()

    # --- actions -----------------------------------------------------------------------------
    def _targets(self) -> tuple[JobFilter, str] | None:
        """The marked jobs, else the job under the cursor."""
        table = self.table
        if table.selected:
            ids = tuple(table.selected.values())
            return JobFilter(ids=ids), f"the {plural(len(ids), 'selected job')}"
        job = table.current
        if job is None:
            self.notify("No job under the cursor.", severity="warning")
            return None
        return JobFilter(ids=(job.id,)), f"job {job.id}"

    def _act(self, verb: str) -> None:
        targets = self._targets()
        if targets is not None:
            self.app.start_bulk(verb, targets[0], targets[1], on_done=self._after_action)

    def _act_on_filter(self, verb: str, selection: JobFilter) -> None:
        self.app.start_bulk(verb, selection, f"the filter ({selection.describe()})", on_done=self._after_action)

    def _after_action(self, result: BulkResult | None) -> None:
        self.table.clear_selection()
        self.refresh_data(force=True)

    def action_retry(self) -> None:
        self._act("retry")

    def action_delete(self) -> None:
        self._act("delete")

    def action_unlock(self) -> None:
        self._act("unlock")

    def action_retry_all(self) -> None:
        self._act_on_filter("retry", self.selection)

    def action_delete_all(self) -> None:
        self._act_on_filter("delete", self.selection)

    def action_unlock_stale(self) -> None:
        self._act_on_filter("unlock", replace(self.selection, stale_only=True))

    def action_dequeue(self) -> None:
        job = self.table.current
        queue = job.queue if job else (self.selection.queues[0] if self.selection.queues else "")
        class_name = job.class_name if job else (self.selection.class_name or "")
        self.app.ask_dequeue(
            queue or "", class_name, list(job.args) if job and job.decodable else None, on_done=self._after_action
        )

    def action_enqueue(self) -> None:
        if self.app.read_only:
            self.notify("Read-only: actions are disabled.", severity="warning")
            return
        queue = self.selection.queues[0] if self.selection.queues else ""
        screen = EnqueueScreen(self.app.ops, queue=queue, queues=self.app.known_queues, classes=self.app.known_classes)
        self.app.push_screen(screen, self._enqueued)

    def _enqueued(self, job: Job | None) -> None:
        if job is None:
            return
        self.notify(
            f"Enqueued job {visible(str(job.id))} ({visible(job.class_name)} on {visible(job.queue)}, "
            f"{job.state.value}).",
            timeout=6,
            markup=False,
        )
        self.refresh_data(force=True)

    def action_pause(self) -> None:
        job = self.table.current
        queue = self.selection.queues[0] if self.selection.queues else (job.queue if job else None)
        if queue is None:
            self.notify("Pick a queue first (f) or put the cursor on a job.", severity="warning")
            return
        self.app.toggle_pause(queue)
