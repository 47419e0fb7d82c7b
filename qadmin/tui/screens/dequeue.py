"""The dequeue form: a queue, a class and (optionally) exact arguments, like Resque.dequeue."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from qadmin.errors import UsageError
from qadmin.filters import JobFilter, parse_args_json
from qadmin.text import visible, visible_json
from qadmin.tui.suggest import class_suggester, queue_suggester

#: characters of a job's arguments (as JSON) put in the arguments box at most
PREFILL = 4096


class DequeueScreen(ModalScreen["JobFilter | None"]):
    """Answers the selection to dequeue, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="dequeue.cancel")]

    def __init__(
        self,
        queue: str = "",
        class_name: str = "",
        args: list[Any] | None = None,
        *,
        queues: Iterable[str] = (),
        classes: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.known_queues, self.known_classes = list(queues), list(classes)
        #: why a value of the job was not put in its box
        self.notes: list[str] = []
        args_json = "" if args is None else visible_json(json.dumps(args, ensure_ascii=False, default=str))
        if len(args_json) > PREFILL:
            self.notes.append(
                f"The job's arguments ({len(args_json):,} characters of JSON) are too long to "
                "edit here: type the ones to match, or leave the box empty for any."
            )
            args_json = ""
        self.initial = (self._prefill("queue", queue), self._prefill("class", class_name), args_json)

    def _prefill(self, what: str, value: str) -> str:
        # a box shows its text to the terminal as it is: a name holding control characters would
        # act on it, and its escaped form names another queue or class
        if visible(value) == value:
            return value
        self.notes.append(
            f"The job's {what} name holds control characters ({visible(value)}): it is not put in its box."
        )
        return ""

    def compose(self) -> ComposeResult:
        queue, class_name, args = self.initial
        with Vertical(id="dialog"):
            yield Static("Dequeue waiting jobs", classes="dialog-title")
            yield Label("Queue")
            yield Input(queue, id="queue", placeholder="queue name", suggester=queue_suggester(self.known_queues))
            yield Label("Class")
            yield Input(class_name, id="class", placeholder="job class", suggester=class_suggester(self.known_classes))
            yield Label("Arguments (JSON array; empty: any arguments)")
            yield Input(args, id="args", placeholder='e.g. ["user@example.com", "Welcome"]')
            if self.notes:
                yield Static(Text("\n".join(self.notes)), id="notes", classes="dialog-more")
            yield Static("", id="problem", classes="dialog-problem")
            yield Static("enter: preview what would be dequeued · escape: cancel", classes="dialog-more")

    def on_mount(self) -> None:
        self.query_one("#queue" if not self.initial[0] else "#class" if not self.initial[1] else "#args", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        queue = self.query_one("#queue", Input).value.strip()
        class_name = self.query_one("#class", Input).value.strip()
        args_text = self.query_one("#args", Input).value.strip()
        problem = self.query_one("#problem", Static)
        if not queue or not class_name:
            problem.update(Text("Dequeue needs a queue and a class."))
            self.query_one("#queue" if not queue else "#class", Input).focus()
            return
        try:
            args = tuple(parse_args_json(args_text)) if args_text else None
        except UsageError as exc:
            problem.update(Text(visible(str(exc).replace("--args", "the arguments"))))
            self.query_one("#args", Input).focus()
            return
        self.dismiss(JobFilter(queues=(queue,), class_name=class_name, args=args))

    def action_cancel(self) -> None:
        self.dismiss(None)
