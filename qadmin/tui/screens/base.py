"""What every page of the console shares: layout, live refresh in thread workers, read-only."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from qadmin.tui.messages import LoadFinished, OpFailed
from qadmin.tui.widgets.nav_bar import NavBar
from qadmin.tui.widgets.status_line import StatusLine

if TYPE_CHECKING:
    from qadmin.ops import Ops
    from qadmin.tui.console import Console

log = logging.getLogger("qadmin.tui")

#: actions that change jobs or queues: hidden from the footer and refused when read-only
MUTATING = frozenset(
    {
        "retry",
        "delete",
        "dequeue",
        "enqueue",
        "unlock",
        "run_now",
        "kill",
        "edit",
        "cancel_job",
        "pause",
        "retry_all",
        "delete_all",
        "unlock_stale",
        "retry_group",
        "delete_group",
        "enable",
        "disable",
    }
)


class QadminScreen(Screen[None]):
    """A page whose data comes from `fetch`, run in a thread worker every refresh interval.

    One refresh is in flight at a time: while the backend is slow the next tick does not pile
    up another thread, it reports how long the current one has been waiting instead.
    """

    #: which page of the nav bar this screen belongs to (a job's page says so per instance: the
    #: page it was opened from)
    PAGE: str = ""
    #: what the status line calls a refresh of this screen
    WHAT: ClassVar[str] = "refresh"

    app: Console

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token = 0
        self._inflight: dict[int, float] = {}
        self._timer: Timer | None = None

    # --- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield NavBar(self.PAGE)
        yield from self.compose_body()
        yield StatusLine()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    # --- refresh -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._timer = self.set_interval(self.app.refresh_interval, self.refresh_data)
        self.watch(self.app, "refresh_interval", self._reschedule, init=False)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())
        self.refresh_data()

    def _reschedule(self, interval: float) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_interval(interval, self.refresh_data)

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
        self.refresh_data()

    def refresh_data(self, force: bool = False) -> None:
        """Start a refresh; with `force`, even while one is in flight (the request changed)."""
        if self._inflight and not force:
            waited = time.monotonic() - min(self._inflight.values())
            self.app.backend_waiting(self.WHAT, waited)
            return
        self._token += 1
        self._inflight[self._token] = time.monotonic()
        self._load(self._token, self.request())

    @property
    def token(self) -> int:
        return self._token

    @work(thread=True, group="load", exit_on_error=False)
    def _load(self, token: int, request: Any) -> None:
        ok = False
        try:
            for message in self.fetch(self.app.ops, token, request):
                self.post_message(message)
            ok = True
        except Exception as exc:
            log.debug("%s failed", self.WHAT, exc_info=True)
            self.post_message(OpFailed(self.WHAT, exc))
        finally:
            self.post_message(LoadFinished(token, ok))

    def request(self) -> Any:
        """On the event loop: what the next refresh should ask for (widgets are not thread-safe)."""
        return None

    def fetch(self, ops: Ops, token: int, request: Any) -> Iterable[Message]:
        """Runs in a thread: ask ops, yield messages (each is posted as soon as it is yielded)."""
        return ()

    def redraw(self) -> None:
        """Show the data again in the new theme's colours (by default: ask for it again)."""
        self.refresh_data(force=True)

    def on_load_finished(self, message: LoadFinished) -> None:
        self._inflight.pop(message.token, None)

    # --- read-only ---------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in MUTATING and self.app.read_only)
