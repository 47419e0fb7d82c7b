"""Runs a confirmed bulk action on exactly the previewed ids, with a progress bar, then reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import ProgressBar, Static

from qadmin.ops import BulkResult, Preview
from qadmin.text import plural, visible
from qadmin.tui.messages import BulkFinished, BulkProgress, OpFailed
from qadmin.tui.screens.confirm import PAST

if TYPE_CHECKING:
    from qadmin.tui.console import Console

#: skipped jobs listed in the report (the rest are counted)
SHOW_SKIPPED = 8


class ProgressScreen(ModalScreen[BulkResult | None]):
    """Dismisses with the BulkResult (None if the action failed); closable once finished."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter,escape", "close", "Close", id="progress.close")]

    app: Console

    def __init__(self, preview: Preview) -> None:
        super().__init__()
        self.preview = preview
        self.result: BulkResult | None = None
        self.done = False

    def compose(self) -> ComposeResult:
        verb, count = self.preview.verb.replace("_", " "), self.preview.count
        with Vertical(id="dialog"):
            yield Static(Text(f"{verb.capitalize()} {plural(count, 'job')}"), classes="dialog-title")
            yield ProgressBar(total=count or 1, show_eta=False, id="bar")
            yield Static("working…", id="report", classes="dialog-body")

    def on_mount(self) -> None:
        self.apply()

    @work(thread=True, exit_on_error=False, group="apply")
    def apply(self) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(BulkProgress(done, total))

        try:
            result = self.app.ops.apply(self.preview, progress=progress)
        except Exception as exc:  # noqa: BLE001 - reported in this dialog and by the app
            self.post_message(OpFailed(f"{self.preview.verb.capitalize()} stopped", exc, action=True))
            return
        self.post_message(BulkFinished(result))

    def on_bulk_progress(self, message: BulkProgress) -> None:
        self.query_one(ProgressBar).update(total=message.total or 1, progress=message.done)

    def on_bulk_finished(self, message: BulkFinished) -> None:
        result = message.result
        self.result, self.done = result, True
        self.query_one(ProgressBar).update(total=result.matched or 1, progress=result.matched or 1)
        report = Text()
        report.append(f"{PAST.get(result.verb, result.verb).capitalize()} {result.changed}", style="bold")
        report.append(f" of {plural(result.matched, 'matched job')}")
        report.append(f"; {len(result.skipped)} skipped." if result.skipped else ".")
        for job_id, reason in result.skipped[:SHOW_SKIPPED]:
            report.append(visible(f"\n  skipped {job_id}: {reason}", lines=True))
        if len(result.skipped) > SHOW_SKIPPED:
            report.append(f"\n  … and {len(result.skipped) - SHOW_SKIPPED} more skipped")
        report.append("\n\nenter: close")
        self.query_one("#report", Static).update(report)
        self.refresh_bindings()

    def on_op_failed(self, message: OpFailed) -> None:
        self.done = True
        self.query_one("#report", Static).update(
            Text(
                f"The action stopped: {visible(str(message.error), lines=True)}\n"
                "Jobs changed before the error stay changed; "
                "the screen shows the current state once the backend answers.\n\nenter: close"
            )
        )
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close":
            return self.done
        return True

    def action_close(self) -> None:
        if self.done:
            self.dismiss(self.result)
