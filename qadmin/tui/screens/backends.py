"""`b`: switch to another backend named in the config file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class BackendsScreen(ModalScreen["str | None"]):
    """Answers the chosen backend's name, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="backends.cancel")]

    def __init__(self, backends: Sequence[tuple[str, str]], current: str) -> None:
        super().__init__()
        self.backends = backends
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Switch backend", classes="dialog-title")
            if not self.backends:
                yield Static(
                    Text(
                        'No named backends. Add them to qadmin.toml:\n\n[backends.local]\nurl = "sqlite:///qadmin.db"'
                    ),
                    classes="dialog-body",
                )
                return
            options = []
            for name, url in self.backends:
                label = Text(("● " if name == self.current else "  ") + name, style="bold")
                label.append(f"  {url}", style="dim")
                options.append(Option(label, id=name))
            yield OptionList(*options, id="choices")
            yield Static("enter: switch · escape: cancel", classes="dialog-more")

    def on_mount(self) -> None:
        if self.backends:
            choices = self.query_one(OptionList)
            names = [n for n, _ in self.backends]
            choices.highlighted = names.index(self.current) if self.current in names else 0
            choices.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
