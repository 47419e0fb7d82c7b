"""`Console`: what the console's pages share with the app that holds them.

The pages read the ops in use and the app's state (refresh interval, status line, the names the
backend showed) and call its navigation verbs. They know it by this class, not by `QadminApp`,
whose module imports every page: a page importing it back would close an import circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from textual.app import App
from textual.reactive import reactive

from qadmin.filters import JobFilter
from qadmin.job import JobId
from qadmin.ops import Ops
from qadmin.tui.text import duration, ts

#: a refresh waiting longer than this (or 1.5 intervals) puts "backend slow" on the status line
SLOW_AFTER = 3.0


class Console(App[None]):
    #: seconds between refreshes of the page on screen
    refresh_interval: reactive[float] = reactive(2.0)
    #: (level, text) for the status line: level is ok, slow, error or wait
    status: reactive[tuple[str, str]] = reactive(("wait", "connecting…"))
    #: what the nav bar calls the backend in use
    backend_name: reactive[str] = reactive("")

    def __init__(self, ops: Ops, *, read_only: bool = False) -> None:
        super().__init__()
        self.ops = ops
        self.read_only = read_only
        self.last_ok: datetime | None = None
        #: queue and class names of the backend in use, for completion (`learn_names`)
        self.known_queues: set[str] = set()
        self.known_classes: set[str] = set()

    def learn_names(self, queues: Iterable[str] = (), classes: Iterable[str] = ()) -> bool:
        """Add names the backend showed; True when one was new."""
        queues = {q for q in queues if isinstance(q, str) and q} - self.known_queues
        classes = {c for c in classes if isinstance(c, str) and c} - self.known_classes
        self.known_queues |= queues
        self.known_classes |= classes
        return bool(queues or classes)

    def backend_waiting(self, what: str, waited: float) -> None:
        """A page's refresh is still running after `waited` seconds."""
        if waited < max(SLOW_AFTER, 1.5 * self.refresh_interval):
            return
        since = f"showing data from {ts(self.last_ok)}" if self.last_ok else "no data yet"
        self.status = ("slow", f"backend slow: the {what} refresh has waited {duration(waited)} — {since}")

    # --- navigation: the app (`QadminApp`) opens the pages -----------------------------------
    def show_jobs(self, selection: JobFilter) -> None:
        """The jobs page, filtered (from a queue of the overview or an error group)."""
        raise NotImplementedError

    def open_job(self, job_id: JobId) -> None:
        raise NotImplementedError

    def start_bulk(
        self, verb: str, selection: JobFilter, label: str | None = None, on_done: Callable[[Any], None] | None = None
    ) -> None:
        """Preview `verb` on `selection`, ask, then apply to exactly the previewed jobs."""
        raise NotImplementedError

    def toggle_pause(self, queue: str) -> None:
        raise NotImplementedError

    def ask_dequeue(
        self, queue: str, class_name: str, args: list[Any] | None, on_done: Callable[[Any], None] | None = None
    ) -> None:
        raise NotImplementedError
