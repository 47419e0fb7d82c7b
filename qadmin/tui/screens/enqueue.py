"""The "Enqueue" form: one new job (class, arguments, queue, priority, when, timeout), enqueued through
`Ops.enqueue` in a thread worker (the UI thread never waits on the backend) and audited there."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from qadmin.errors import UsageError
from qadmin.job import Job
from qadmin.job_input import parse_args, parse_delay, parse_kwargs, parse_priority, parse_run_at, parse_timeout
from qadmin.ops import Ops
from qadmin.text import visible
from qadmin.tui.suggest import class_suggester, queue_suggester

#: the boxes, in order, with what each label says
FIELDS = (
    ("class", "Class", "job class or function"),
    ("args", "Arguments (JSON array)", 'e.g. ["user@example.com", "Welcome"]'),
    ("kwargs", "Keyword arguments (JSON object)", 'e.g. {"locale": "en"}'),
    ("queue", "Queue", "default"),
    ("priority", "Priority (lower runs first)", "0"),
    ("when", "Run at (ISO 8601, UTC unless it has an offset) or in (30s, 15m, 2h)", "now"),
    ("timeout", "Timeout (this job's time limit: 30s, 15m, 2h)", "the worker's max run time"),
)


@dataclass(frozen=True)
class NewJobRequest:
    """What the form asks for, read and checked on the UI thread (no backend call)."""

    class_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None
    priority: int | None
    run_at: datetime | None
    delay: float | None
    timeout: float | None = None


class EnqueueOutcome(Message):
    """The thread worker's answer: the stored job, or why nothing was stored."""

    def __init__(self, job: Job | None, problem: str = "") -> None:
        super().__init__()
        self.job, self.problem = job, problem


def parse_when(text: str) -> tuple[datetime | None, float | None]:
    """(run_at, delay) from one box: a delay where it reads as one (30s, 15m, 90), else a time."""
    if not text:
        return None, None
    try:
        return None, parse_delay(text)
    except UsageError:
        pass
    try:
        return parse_run_at(text), None
    except UsageError:
        raise UsageError(
            f"run at/in: {text!r} is neither an ISO 8601 time nor a delay such as 30s, 15m or 2h"
        ) from None


class EnqueueScreen(ModalScreen["Job | None"]):
    """Answers the job enqueued, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="enqueue.cancel")]

    def __init__(self, ops: Ops, *, queue: str = "", queues: Iterable[str] = (), classes: Iterable[str] = ()) -> None:
        super().__init__()
        self.ops = ops
        self.known_queues, self.known_classes = list(queues), list(classes)
        # a name holding control characters would act on the terminal from its box
        self.queue = queue if visible(queue) == queue else ""
        self.supports_priority = ops.supports_priority
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Enqueue a new job", classes="dialog-title")
            for name, label, placeholder in FIELDS:
                if name == "priority" and not self.supports_priority:
                    yield Static(
                        "No priority: this backend's queues (Resque's, on Redis) run their jobs in order.",
                        id="no-priority",
                        classes="dialog-more",
                    )
                    continue
                yield Label(label)
                suggester = (
                    class_suggester(self.known_classes)
                    if name == "class"
                    else queue_suggester(self.known_queues)
                    if name == "queue"
                    else None
                )
                value = self.queue if name == "queue" else ""
                yield Input(value, id=name, placeholder=placeholder, suggester=suggester)
            yield Static("", id="problem", classes="dialog-problem")
            yield Static("enter: enqueue · escape: cancel", classes="dialog-more")

    def on_mount(self) -> None:
        self.query_one("#class", Input).focus()

    def _value(self, name: str) -> str:
        found = self.query(f"#{name}").results(Input)
        return next((box.value.strip() for box in found), "")

    def read_form(self) -> NewJobRequest:
        """The form's values, checked; UsageError naming the first mistake."""
        class_name = self._value("class")
        if not class_name:
            raise UsageError("Name the job's class or function.")
        run_at, delay = parse_when(self._value("when"))
        priority_text, timeout_text = self._value("priority"), self._value("timeout")
        return NewJobRequest(
            class_name=class_name,
            args=parse_args(self._value("args"), "the arguments"),
            kwargs=parse_kwargs(self._value("kwargs") or "{}", "the keyword arguments"),
            queue=self._value("queue") or None,
            priority=parse_priority(priority_text) if priority_text else None,
            run_at=run_at,
            delay=delay,
            timeout=parse_timeout(timeout_text) if timeout_text else None,
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        try:
            request = self.read_form()
        except UsageError as exc:
            self._show_problem(str(exc))
            return
        self.busy = True
        self.query_one("#problem", Static).update(Text("enqueueing…"))
        self._enqueue(request)

    @work(thread=True, group="enqueue", exit_on_error=False)
    def _enqueue(self, request: NewJobRequest) -> None:
        try:
            job = self.ops.enqueue(
                request.class_name,
                request.args,
                request.kwargs,
                queue=request.queue,
                priority=request.priority,
                run_at=request.run_at,
                delay=request.delay,
                timeout=request.timeout,
            )
        except Exception as exc:  # noqa: BLE001 - shown in the form; nothing was stored
            self.post_message(EnqueueOutcome(None, str(exc) or type(exc).__name__))
            return
        self.post_message(EnqueueOutcome(job))

    def on_enqueue_outcome(self, message: EnqueueOutcome) -> None:
        self.busy = False
        if message.job is None:
            self._show_problem(message.problem)
            return
        self.dismiss(message.job)

    def _show_problem(self, problem: str) -> None:
        self.query_one("#problem", Static).update(Text(visible(problem)))

    def action_cancel(self) -> None:
        self.dismiss(None)
