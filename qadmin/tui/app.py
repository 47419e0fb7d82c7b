"""`QadminApp`: the console an operator keeps open while on call.

The app receives an `Ops` (`run` opens it from the CLI's `Settings`) and never touches a backend itself: every ops call
runs in a thread worker and answers with a message (`qadmin.tui.messages`). Pages are Textual
modes (1-8), each with its own screen stack, so a job opened from the jobs page is still there
when you come back. Every action goes preview -> confirmation -> apply with progress -> report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from qadmin.errors import BackendUnavailable, QadminError
from qadmin.filters import JobFilter
from qadmin.job import JobId
from qadmin.ops import Ops, open_ops
from qadmin.settings import Settings
from qadmin.text import visible
from qadmin.tui.console import Console
from qadmin.tui.messages import BackendOpened, LoadFinished, OpFailed, PauseState, PreviewReady, QueueToggled
from qadmin.tui.screens.audit import AuditScreen
from qadmin.tui.screens.backends import BackendsScreen
from qadmin.tui.screens.base import MUTATING, QadminScreen
from qadmin.tui.screens.confirm import ConfirmScreen
from qadmin.tui.screens.dequeue import DequeueScreen
from qadmin.tui.screens.errors import ErrorsScreen
from qadmin.tui.screens.help import HelpScreen
from qadmin.tui.screens.history import HistoryScreen
from qadmin.tui.screens.job_detail import JobDetailScreen
from qadmin.tui.screens.jobs import JobsScreen
from qadmin.tui.screens.metrics import MetricsScreen
from qadmin.tui.screens.overview import OverviewScreen
from qadmin.tui.screens.progress import ProgressScreen
from qadmin.tui.screens.recurring import RecurringScreen
from qadmin.tui.screens.workers import WorkersScreen
from qadmin.tui.text import duration, short, ts

#: refresh intervals `+` and `-` step through, in seconds
INTERVALS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
#: pages by mode name, in number-key order
PAGES: dict[str, type[QadminScreen]] = {
    "overview": OverviewScreen,
    "jobs": JobsScreen,
    "errors": ErrorsScreen,
    "workers": WorkersScreen,
    "audit": AuditScreen,
    "recurring": RecurringScreen,
    "history": HistoryScreen,
    "metrics": MetricsScreen,
}


class QadminApp(Console):
    CSS_PATH = "app.tcss"
    TITLE = "qadmin"
    MODES: ClassVar[dict[str, Any]] = dict(PAGES)
    DEFAULT_MODE = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "page('overview')", "Overview", show=False, id="app.overview"),
        Binding("2", "page('jobs')", "Jobs", show=False, id="app.jobs"),
        Binding("3", "page('errors')", "Errors", show=False, id="app.errors"),
        Binding("4", "page('workers')", "Workers", show=False, id="app.workers"),
        Binding("5", "page('audit')", "Audit", show=False, id="app.audit"),
        Binding("6", "page('recurring')", "Recurring", show=False, id="app.recurring"),
        Binding("7", "page('history')", "History", show=False, id="app.history"),
        Binding("8", "page('metrics')", "Metrics", show=False, id="app.metrics"),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("b", "backends", "Switch backend", show=False, id="app.backends"),
        Binding("t", "toggle_theme", "Light/dark theme", show=False, id="app.theme"),
        Binding("plus", "refresh_rate(-1)", "Refresh faster", show=False, key_display="+", id="app.faster"),
        Binding("minus", "refresh_rate(1)", "Refresh slower", show=False, key_display="-", id="app.slower"),
        Binding("ctrl+r", "refresh_now", "Refresh now", show=False, id="app.refresh"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        ops: Ops,
        *,
        read_only: bool = False,
        refresh: float = 2.0,
        settings: Settings | None = None,
        backend_name: str | None = None,
    ) -> None:
        super().__init__(ops, read_only=read_only)
        name = backend_name or (settings.backend_name if settings is not None else None) or backend_label(ops)
        #: what the switcher offers: the config file's named backends, and the one `ops` is open on
        self.backends: dict[str, Settings] = {}
        if settings is not None:
            self.backends = {other: settings.for_backend(other) for other in settings.backends}
            self.backends.setdefault(name, settings)
        #: set by `exit`: keys typed after `q` reach nothing (they opened pages on a closing app)
        self.quitting = False
        self.set_reactive(QadminApp.refresh_interval, float(refresh))
        self.set_reactive(QadminApp.backend_name, name)

    # --- status line -------------------------------------------------------------------------
    def on_load_finished(self, message: LoadFinished) -> None:
        if not message.ok:
            return
        self.last_ok = self.ops.clock()
        self.status = (
            "ok",
            (
                f"{self.ops.backend.kind} answered at {ts(self.last_ok)} · "
                f"refresh every {duration(self.refresh_interval)} (+/-)"
            ),
        )

    def on_op_failed(self, message: OpFailed) -> None:
        error = message.error
        text = str(error) if isinstance(error, QadminError) else f"{type(error).__name__}: {error}"
        if message.action:
            self.notify(visible(text, lines=True), title=message.what, severity="error", timeout=10, markup=False)
            if not isinstance(error, BackendUnavailable):
                return
        since = f"showing data from {ts(self.last_ok)}" if self.last_ok else "no data yet"
        self.status = ("error", f"{short(text, 90)} — {since}; retrying every {duration(self.refresh_interval)}")

    # --- navigation --------------------------------------------------------------------------
    def exit(self, *args: Any, **kwargs: Any) -> None:
        self.quitting = True
        super().exit(*args, **kwargs)

    async def on_event(self, event: events.Event) -> None:
        # a key pressed right after q arrives while the screens are being closed: a page it
        # opened mounted without its widgets and its on_mount raised on the way out
        if self.quitting and isinstance(event, (events.InputEvent, events.Paste)):
            return
        await super().on_event(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.screen
        if isinstance(screen, ModalScreen) and action in ("page", "backends", "help"):
            return False  # a dialog is answered (or closed) before going anywhere else
        # no quitting while an action is half-way through its jobs
        return not (action == "quit" and isinstance(screen, ProgressScreen) and not screen.done)

    def action_page(self, mode: str) -> None:
        self.switch_mode(mode)

    def show_jobs(self, selection: JobFilter) -> None:
        """The jobs page, filtered (from a queue of the overview or an error group)."""
        self.switch_mode("jobs")
        while len(self.screen_stack) > 1:
            self.pop_screen()
        jobs = self.screen_stack[0]
        assert isinstance(jobs, JobsScreen)
        jobs.set_filter(selection)

    def open_job(self, job_id: JobId) -> None:
        self.push_screen(JobDetailScreen(job_id, page=self.current_mode))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_sections(), self.read_only))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        sections: list[tuple[str, list[tuple[str, str]]]] = []
        for title, bindings in (
            ("Everywhere", self.BINDINGS),
            ("Overview", OverviewScreen.BINDINGS),
            ("Jobs", JobsScreen.BINDINGS),
            ("Job detail", JobDetailScreen.BINDINGS),
            ("Errors", ErrorsScreen.BINDINGS),
            ("Workers", WorkersScreen.BINDINGS),
            ("Recurring", RecurringScreen.BINDINGS),
            ("History", HistoryScreen.BINDINGS),
            ("Metrics", MetricsScreen.BINDINGS),
            ("Confirmation", ConfirmScreen.BINDINGS),
        ):
            keys = [
                (self.get_key_display(b), b.description)
                for b in bindings
                if isinstance(b, Binding) and not (self.read_only and _action_name(b.action) in MUTATING)
            ]
            if title == "Everywhere":
                keys.append((self.get_key_display(Binding("ctrl+p", "")), "Commands: every action by name"))
            sections.append((title, keys))
        return sections

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_refresh_rate(self, step: int) -> None:
        index = min(range(len(INTERVALS)), key=lambda i: abs(INTERVALS[i] - self.refresh_interval))
        self.refresh_interval = INTERVALS[max(0, min(len(INTERVALS) - 1, index + step))]
        self.notify(f"Refreshing every {duration(self.refresh_interval)}", timeout=2)
        self.action_refresh_now()

    def action_refresh_now(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, QadminScreen):
                screen.refresh_data()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode in PAGES:
            yield SystemCommand(f"Go to {mode}", f"Show the {mode} page", partial(self.switch_mode, mode))
        yield SystemCommand("Switch backend", "Open another backend from the config file", self.action_backends)
        yield SystemCommand("Light/dark theme", "Toggle between the light and the dark theme", self.action_toggle_theme)
        for binding in getattr(screen, "BINDINGS", ()):
            if not isinstance(binding, Binding) or binding.action in ("escape", "back"):
                continue
            name = _action_name(binding.action)
            if screen.check_action(name, ()) and hasattr(screen, f"action_{name}"):
                yield SystemCommand(
                    binding.description,
                    f"key: {self.get_key_display(binding)}",
                    partial(screen.run_action, binding.action),
                )

    # --- actions: preview -> confirm -> apply with progress -> report ----------------------------
    def allow_actions(self) -> bool:
        if self.read_only:
            self.notify("Read-only: actions are disabled.", severity="warning")
            return False
        return True

    def start_bulk(
        self, verb: str, selection: JobFilter, label: str | None = None, on_done: Callable[[Any], None] | None = None
    ) -> None:
        """Preview `verb` on `selection`, ask, then apply to exactly the previewed jobs."""
        if not self.allow_actions():
            return
        self._preview(verb, selection, label or f"the filter ({selection.describe()})", on_done)

    @work(thread=True, group="preview", exit_on_error=False)
    def _preview(self, verb: str, selection: JobFilter, label: str, on_done: Callable[[Any], None] | None) -> None:
        try:
            preview = self.ops.redaction.sampled(self.ops.preview(verb, selection))  # shown; its ids are acted on
            alive = self.ops.alive_holders(preview)
        except Exception as exc:  # noqa: BLE001 - reported as a failed action, nothing changed
            self.post_message(OpFailed(f"Cannot {verb}: nothing changed", exc, action=True))
            return
        self.post_message(PreviewReady(preview, label, on_done, alive))

    def on_preview_ready(self, message: PreviewReady) -> None:
        preview, on_done = message.preview, message.on_done

        def confirmed(yes: bool | None) -> None:
            if yes and preview.count:
                self.push_screen(ProgressScreen(preview), finished)

        def finished(result: Any) -> None:
            if on_done is not None:
                on_done(result)

        self.push_screen(ConfirmScreen.for_preview(preview, message.label, message.alive), confirmed)

    def toggle_pause(self, queue: str) -> None:
        if self.allow_actions():
            self._pause_state(queue)

    @work(thread=True, group="pause", exit_on_error=False)
    def _pause_state(self, queue: str) -> None:
        try:
            paused = queue in self.ops.paused()
        except Exception as exc:  # noqa: BLE001 - reported as a failed action, nothing changed
            self.post_message(OpFailed("Cannot pause or resume", exc, action=True))
            return
        self.post_message(PauseState(queue, paused))

    def on_pause_state(self, message: PauseState) -> None:
        queue, paused = message.queue, message.paused
        verb = "resume" if paused else "pause"
        name = visible(queue)
        body = Text(
            f"Workers take jobs from '{name}' again."
            if paused
            else f"Workers stop taking jobs from '{name}'; its jobs stay queued. Press p again to resume."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._set_pause(queue, not paused)

        self.push_screen(
            ConfirmScreen(f"{verb.capitalize()} queue {name}?", body, yes_label=verb.capitalize()), confirmed
        )

    @work(thread=True, group="pause", exit_on_error=False)
    def _set_pause(self, queue: str, pause: bool) -> None:
        try:
            changed = self.ops.pause(queue) if pause else self.ops.resume(queue)
        except Exception as exc:  # noqa: BLE001 - reported as a failed action
            self.post_message(OpFailed(f"{'Pause' if pause else 'Resume'} failed", exc, action=True))
            return
        self.post_message(QueueToggled(queue, pause, changed))

    def on_queue_toggled(self, message: QueueToggled) -> None:
        state = "paused" if message.paused else "resumed"
        queue = visible(message.queue)
        self.notify(
            f"Queue {queue} {state}." if message.changed else f"Queue {queue} was already {state}.",
            timeout=4,
            markup=False,
        )
        self.action_refresh_now()

    def ask_dequeue(
        self, queue: str, class_name: str, args: list[Any] | None, on_done: Callable[[Any], None] | None = None
    ) -> None:
        if not self.allow_actions():
            return

        def chosen(selection: JobFilter | None) -> None:
            if selection is not None:
                self.start_bulk("dequeue", selection, f"the filter ({selection.describe()})", on_done)

        self.push_screen(
            DequeueScreen(queue, class_name, args, queues=self.known_queues, classes=self.known_classes), chosen
        )

    # --- backends ----------------------------------------------------------------------------
    def action_backends(self) -> None:
        listed = [(name, settings.url) for name, settings in self.backends.items()]

        def chosen(name: str | None) -> None:
            if name and name != self.backend_name:
                self._open_backend(name)

        self.push_screen(BackendsScreen(listed, self.backend_name), chosen)

    @work(thread=True, group="backend", exclusive=True, exit_on_error=False)
    def _open_backend(self, name: str) -> None:
        try:
            ops = open_ops(self.backends[name], face="tui", actor=self.ops.actor, clock=self.ops.clock)
            ops.backend.check()
        except Exception as exc:  # noqa: BLE001 - the current backend stays in use
            self.post_message(OpFailed(f"Cannot switch to {name}", exc, action=True))
            return
        self.post_message(BackendOpened(name, ops))

    async def on_backend_opened(self, message: BackendOpened) -> None:
        old, self.ops = self.ops, message.ops
        self.backend_name = message.name
        self.last_ok = None
        self.known_queues, self.known_classes = set(), set()
        self.status = ("wait", f"switched to {message.name}; loading…")
        # every page starts over: ids and filters of the old backend mean nothing here
        await self.switch_mode("overview")
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        for mode, page in PAGES.items():
            if mode != "overview":
                await self.remove_mode(mode)
                self.add_mode(mode, page)
        overview = self.screen_stack[0]
        if isinstance(overview, QadminScreen):
            overview.refresh_data(force=True)
        self._close(old)

    @work(thread=True, group="close", exit_on_error=False)
    def _close(self, ops: Ops) -> None:
        ops.close()


def backend_label(ops: Ops) -> str:
    return ops.backend.safe_url or ops.backend.kind


def _action_name(action: str) -> str:
    return action.split("(", 1)[0]


def run(settings: Settings, read_only: bool = False, refresh: float = 2.0) -> None:
    """`qadmin tui`: open the backend `settings` make current and run the console until quit."""
    app = QadminApp(open_ops(settings, face="tui"), read_only=read_only, refresh=refresh, settings=settings)
    try:
        app.run()
    finally:
        app.ops.close()
