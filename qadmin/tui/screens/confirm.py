"""The confirmation every action goes through: what will change, how many, a sample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static

from qadmin.job import Job
from qadmin.ops import VERBS, Preview, alive_warning
from qadmin.text import plural, visible
from qadmin.tui.text import args_of, cell, state_text

#: verbs whose confirmation starts on "Cancel": they cannot be undone
DESTRUCTIVE = frozenset({"delete", "dequeue", "cancel"})
#: past tense for the buttons and reports
PAST = {
    "retry": "retried",
    "delete": "deleted",
    "dequeue": "dequeued",
    "unlock": "unlocked",
    "run_now": "run now",
    "kill": "killed",
    "cancel": "cancelled",
}


class ConfirmScreen(ModalScreen[bool]):
    """Answers True (y, or the first button) or False (n, escape, or Cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "Cancel", id="confirm.no"),
    ]

    def __init__(
        self,
        title: str,
        body: RenderableType,
        *,
        yes_label: str,
        sample: Sequence[Job] = (),
        more: int = 0,
        can_confirm: bool = True,
        destructive: bool = False,
    ) -> None:
        super().__init__()
        self.title_text, self.body, self.yes_label = title, body, yes_label
        self.sample, self.more = list(sample), more
        self.can_confirm, self.destructive = can_confirm, destructive

    @classmethod
    def for_preview(cls, preview: Preview, label: str, alive: int = 0) -> ConfirmScreen:
        """The confirmation of a bulk verb: the frozen ids' count and the backend's sample, and for
        an unlock, a warning when a worker that looks alive holds some of the jobs."""
        verb, count = preview.verb.replace("_", " "), preview.count
        jobs = plural(count, "job")
        allowed = VERBS.get(preview.verb, frozenset())
        states = "/".join(sorted(s.value for s in allowed))
        if count == 0:
            return cls(
                f"Nothing to {verb}",
                Text(
                    f"Nothing in {visible(label)} can be {PAST.get(preview.verb, verb)}: {verb} acts on {states} jobs."
                ),
                yes_label="OK",
                can_confirm=False,
            )
        body = Text()
        body.append("Selection: ", style="bold")
        body.append(f"{visible(label)}\n")
        body.append(jobs, style="bold")
        body.append(f" will be {PAST.get(preview.verb, verb)}; any that change state meanwhile are skipped.")
        if alive:
            body.append(f"\nWarning: {alive_warning(alive, count)}.", style="bold red")
        selection = preview.selection
        if allowed and not selection.ids and not (selection.states and selection.states <= allowed):
            body.append(f"\n{verb.capitalize()} acts on {states} jobs only.", style="dim")
        return cls(
            f"{verb.capitalize()} {jobs}?",
            body,
            yes_label=f"{verb.capitalize()} {jobs}" + (" anyway" if alive else ""),
            sample=preview.sample,
            more=max(count - len(preview.sample), 0),
            destructive=verb in DESTRUCTIVE or bool(alive),
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.title_text), classes="dialog-title")
            yield Static(self.body, classes="dialog-body")
            if self.sample:
                yield DataTable(id="sample", cursor_type="none", show_cursor=False)
                if self.more:
                    yield Static(f"… and {self.more} more", classes="dialog-more")
            with Horizontal(classes="buttons"):
                if self.can_confirm:
                    yield Button(f"{self.yes_label} (y)", id="yes", variant="error" if self.destructive else "primary")
                    yield Button("Cancel (n)", id="no")
                else:
                    yield Button("OK", id="no", variant="primary")

    def on_mount(self) -> None:
        if self.sample:
            table = self.query_one("#sample", DataTable)
            table.add_columns("ID", "STATE", "QUEUE", "CLASS", "ARGS")
            for job in self.sample:
                class_name = str(job.class_name or "")
                if len(class_name) > 28:
                    class_name = class_name.rsplit(".", 1)[-1]
                table.add_row(
                    cell(str(job.id), 24),
                    state_text(self.app, job),
                    cell(job.queue or "", 20),
                    cell(class_name, 28),
                    cell(args_of(job), 30),
                )
        start = "#no" if self.destructive or not self.can_confirm else "#yes"
        self.query_one(start, Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(bool(yes and self.can_confirm))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes" and self.can_confirm)
