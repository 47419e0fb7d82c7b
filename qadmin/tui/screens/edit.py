"""The "Edit" form of a job's page: new arguments, queue, priority or run time for a pending,
scheduled or failed job, edited through `Ops.edit` in a thread worker (the UI thread never waits
on the backend), guarded and audited there. A box left as it was is no edit."""

from __future__ import annotations

import json
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
from qadmin.job import Job, iso
from qadmin.job_input import parse_args, parse_kwargs, parse_priority, parse_run_at
from qadmin.ops import EditResult, Ops
from qadmin.text import visible

#: the boxes, in order, with what each label says
FIELDS = (
    ("args", "Arguments (JSON array)"),
    ("kwargs", "Keyword arguments (JSON object)"),
    ("queue", "Queue"),
    ("priority", "Priority (lower runs first)"),
    ("run_at", "Run at (ISO 8601, UTC unless it has an offset; a past time: now)"),
)
#: formats whose arguments qadmin cannot write back (Ruby and PHP objects)
FIXED_ARGUMENTS = {"delayed_job": "delayed_job (YAML)", "djjob": "DJJob (PHP serialize)"}


def current_values(job: Job) -> dict[str, str]:
    """The job's values as the boxes show them."""
    return {
        "args": json.dumps(job.args, ensure_ascii=False),
        "kwargs": json.dumps(job.kwargs, ensure_ascii=False),
        "queue": job.queue or "",
        "priority": str(job.priority),
        "run_at": iso(job.run_at) or "",
    }


class EditOutcome(Message):
    """The thread worker's answer: what changed, or why nothing did."""

    def __init__(self, result: EditResult | None, problem: str = "") -> None:
        super().__init__()
        self.result, self.problem = result, problem


class EditScreen(ModalScreen["EditResult | None"]):
    """Answers the edit made, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="edit.cancel")]

    def __init__(self, ops: Ops, job: Job) -> None:
        super().__init__()
        self.ops, self.job = ops, job
        self.current = current_values(job)
        self.fixed = FIXED_ARGUMENTS.get(job.format)
        self.supports_priority = ops.supports_priority and job.format != "djjob"  # DJJob's table has none
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(f"Edit job {visible(str(self.job.id))}"), classes="dialog-title")
            if self.fixed:
                yield Static(
                    f"A {self.fixed} job: qadmin cannot write its arguments back; its queue, priority and "
                    "run time can change.",
                    id="fixed-arguments",
                    classes="dialog-more",
                )
            for name, label in FIELDS:
                if (name in ("args", "kwargs") and self.fixed) or (name == "priority" and not self.supports_priority):
                    continue
                yield Label(label)
                # a value holding control characters would act on the terminal from its box
                yield Input(visible(self.current[name]), id=name)
            yield Static("", id="problem", classes="dialog-problem")
            yield Static("enter: save · escape: cancel", classes="dialog-more")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def read_form(self) -> dict[str, Any]:
        """The changed boxes' values, checked; UsageError naming the first mistake."""
        changes: dict[str, Any] = {}
        for box in self.query(Input).results(Input):
            name, text = str(box.id), box.value.strip()
            if text == visible(self.current[name]).strip():
                continue
            if name == "args":
                changes["args"] = parse_args(text or "[]", "the arguments")
            elif name == "kwargs":
                changes["kwargs"] = parse_kwargs(text or "{}", "the keyword arguments")
            elif name == "queue":
                changes["queue"] = text
            elif name == "priority":
                changes["priority"] = parse_priority(text)
            elif name == "run_at" and text:
                changes["run_at"] = parse_run_at(text, "run at")
        if not changes:
            raise UsageError("Nothing to edit: change a box first (escape cancels).")
        return changes

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy:
            return
        try:
            changes = self.read_form()
        except UsageError as exc:
            self._show_problem(str(exc))
            return
        self.busy = True
        self.query_one("#problem", Static).update(Text("saving…"))
        self._edit(changes)

    @work(thread=True, group="edit", exit_on_error=False)
    def _edit(self, changes: dict[str, Any]) -> None:
        try:
            if "args" in changes or "kwargs" in changes:  # "[redacted]" left in place keeps its value
                args, kwargs = self.ops.redaction.restored_by_id(
                    self.job.id, changes.get("args"), changes.get("kwargs")
                )
                changes.update({k: v for k, v in (("args", args), ("kwargs", kwargs)) if v is not None})
            result = self.ops.edit(self.job.id, **changes)
        except Exception as exc:  # noqa: BLE001 - shown in the form; nothing was changed
            self.post_message(EditOutcome(None, str(exc) or type(exc).__name__))
            return
        self.post_message(EditOutcome(result))

    def on_edit_outcome(self, message: EditOutcome) -> None:
        self.busy = False
        if message.result is None:
            self._show_problem(message.problem)
            return
        self.dismiss(message.result)

    def _show_problem(self, problem: str) -> None:
        self.query_one("#problem", Static).update(Text(visible(problem)))

    def action_cancel(self) -> None:
        self.dismiss(None)
