"""What the history and metrics pages share: the range bar (1h / 24h / 7d / 30d, `[` and `]`), the
queue and class boxes with completion, answers to an older request dropped, and the refresh tick
skipped while a long range's last answer is fresh."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label

from qadmin.insight import RANGES
from qadmin.tui.messages import NamesLoaded, OpFailed
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.suggest import class_suggester, queue_suggester
from qadmin.tui.widgets.state_bar import StateBar

#: the range bar: every range the faces offer, shortest first
RANGE_TABS = tuple((name, name) for name in RANGES)
#: seconds of typing pause before a box applies
DEBOUNCE = 0.4
#: seconds a range's answer stays fresh for the refresh tick: a day read every 2 s costs the
#: backend 1,440 buckets each time for at most one new minute (ctrl+r and any change read now)
FRESH_FOR = {"1h": 0.0, "24h": 10.0, "7d": 60.0, "30d": 60.0}


def range_bindings(page: str) -> list[BindingType]:
    return [
        Binding("right_square_bracket", "step_range(1)", "Range", key_display="]", id=f"{page}.next_range"),
        Binding(
            "left_square_bracket",
            "step_range(-1)",
            "Shorter range",
            show=False,
            key_display="[",
            id=f"{page}.prev_range",
        ),
        Binding("f", "focus_filters", "Narrow", id=f"{page}.filter"),
        Binding("c", "clear_filters", "Clear queue/class", show=False, id=f"{page}.clear"),
        Binding("escape", "escape", "Back from the boxes", show=False, id=f"{page}.escape"),
        Binding("ctrl+r", "reread", "Read the range again now", show=False, id=f"{page}.reread"),
    ]


@dataclass(frozen=True)
class Narrowing:
    """What the page shows: a range, narrowed to a queue and (on the history page) a class."""

    range: str
    queue: str | None = None
    job_class: str | None = None


class InsightScreen(QadminScreen):
    #: what the range bar is called on this page
    RANGE_LABEL: ClassVar[str] = "range"
    #: whether the page narrows by class (the metrics page lists classes: it has no class box)
    CLASS_BOX: ClassVar[bool] = True
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self) -> None:
        super().__init__()
        self.narrowing = Narrowing(RANGE_TABS[1][0])
        #: requests before this token answered an older narrowing: their answers are dropped
        self._current = 0
        #: when the last answer to the current request came (monotonic seconds)
        self._answered_at = -math.inf
        self._debounce: Timer | None = None

    def compose_controls(self) -> ComposeResult:
        with Horizontal(classes="insight-controls"):
            yield Label(self.RANGE_LABEL, classes="insight-label")
            yield StateBar(RANGE_TABS, id="range")
            yield Input(placeholder="queue", id="queue", compact=True)
            if self.CLASS_BOX:
                yield Input(placeholder="class", id="class", compact=True)

    def main_widget(self) -> Widget:
        """What has the focus when no box has it."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.query_one(StateBar).active = self.narrowing.range
        self.main_widget().focus()
        super().on_mount()
        self._current = self.token
        self._show_suggestions()
        self._load_names()

    # --- narrowing ---------------------------------------------------------------------------
    def read_narrowing(self) -> Narrowing:
        queue = self.query_one("#queue", Input).value.strip() or None
        job_class = (self.query_one("#class", Input).value.strip() or None) if self.CLASS_BOX else None
        return Narrowing(self.query_one(StateBar).active, queue, job_class)

    def apply(self) -> None:
        narrowing = self.read_narrowing()
        if narrowing != self.narrowing:
            self.narrowing = narrowing
            self.reload()

    def refresh_data(self, force: bool = False) -> None:
        fresh_for = FRESH_FOR.get(self.narrowing.range, 0.0)
        if force or time.monotonic() - self._answered_at >= fresh_for:
            super().refresh_data(force)

    def reload(self) -> None:
        """Ask again now; whatever the older request answers is dropped."""
        self.refresh_data(force=True)
        self._current = self.token
        self.show_waiting()

    def answers_current(self, token: int) -> bool:
        """Whether an answer is to the request shown now (and if so, it is fresh from now on)."""
        if token < self._current:
            return False
        self._answered_at = time.monotonic()
        return True

    def show_waiting(self) -> None:
        """The request changed: say so until its answer comes."""

    def on_state_bar_changed(self, event: StateBar.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self.apply()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE, self.apply)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply()
        self.main_widget().focus()

    def action_step_range(self, by: int) -> None:
        self.query_one(StateBar).step(by)

    def action_focus_filters(self) -> None:
        self.query_one("#queue", Input).focus()

    def action_clear_filters(self) -> None:
        for box in self.query(Input):
            box.value = ""
        self.apply()

    def action_escape(self) -> None:
        self.main_widget().focus()

    def action_reread(self) -> None:
        self.refresh_data(force=True)

    # --- completion --------------------------------------------------------------------------
    @work(thread=True, group="names", exclusive=True, exit_on_error=False)
    def _load_names(self) -> None:
        """The names the backend knows, beyond those the console has seen (once per visit)."""
        ops = self.app.ops
        try:
            self.post_message(NamesLoaded(ops.queue_names(), ops.class_names()))
        except Exception as exc:  # noqa: BLE001 - on the status line; completion keeps the names seen
            self.post_message(OpFailed("names for completion", exc))

    def on_names_loaded(self, message: NamesLoaded) -> None:
        message.stop()
        self.learn(message.queues, message.classes)

    def learn(self, queues: Iterable[str] = (), classes: Iterable[str] = ()) -> None:
        """Names the page saw (a chart's queues, a metrics row's class) complete in the boxes."""
        if self.app.learn_names(queues, classes) or self.query_one("#queue", Input).suggester is None:
            self._show_suggestions()

    def _show_suggestions(self) -> None:
        self.query_one("#queue", Input).suggester = queue_suggester(self.app.known_queues)
        if self.CLASS_BOX:
            self.query_one("#class", Input).suggester = class_suggester(self.app.known_classes)
