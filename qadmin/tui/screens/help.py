"""`?`: every key of every page, and what a selection means."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.columns import Columns
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "Actions apply to the jobs marked with space; with none marked, to the job under the cursor. "
    "Capital letters act on everything the current filter matches. Every action shows how many jobs "
    "it will change and a sample first, then changes exactly those."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]], read_only: bool) -> None:
        super().__init__()
        self.sections = sections
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog", classes="help"):
            yield Static("Keys", classes="dialog-title")
            intro = INTRO
            if self.read_only:
                intro = "Read-only: every action is hidden and refused. " + intro
            yield Static(Text(intro), classes="dialog-body")
            tables = []
            for title, keys in self.sections:
                table = Table.grid(padding=(0, 2))
                table.add_column(style="bold", min_width=6)
                table.add_column()
                for key, description in keys:
                    table.add_row(key, description)
                tables.append(Group(Text.assemble((title, "bold underline")), table))
            # side by side as far as the width allows: every key on one screen
            yield Static(Columns(tables, padding=(1, 4)), classes="help-section")
            yield Static("escape: close", classes="dialog-more")

    def action_close(self) -> None:
        self.dismiss(None)
