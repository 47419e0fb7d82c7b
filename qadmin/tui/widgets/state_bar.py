"""The row of job states above the jobs table; `[` and `]` (or left/right when focused) step it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from qadmin.tui.text import theme_style


class StateBar(Widget, can_focus=True):
    """Shows every state, the active one highlighted; posts `Changed` when it moves."""

    DEFAULT_CSS = """
    StateBar { height: 1; padding: 0 1; }
    StateBar:focus { background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "step(-1)", "Previous state", show=False),
        Binding("right", "step(1)", "Next state", show=False),
    ]

    #: the active state's key
    active: reactive[str] = reactive("all")

    @dataclass
    class Changed(Message):
        state: str

    def __init__(self, states: tuple[tuple[str, str], ...], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.states = states
        self.set_reactive(StateBar.active, states[0][0])

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh())

    def render(self) -> Text:
        text = Text()
        for key, label in self.states:
            if key == self.active:
                text.append(f" {label} ", style=theme_style(self.app, "text-primary", bold=True) + Style(reverse=True))
            else:
                text.append(f" {label} ", style=theme_style(self.app, "text-muted"))
            text.append(" ")
        return text

    def watch_active(self, state: str) -> None:
        self.post_message(self.Changed(state))

    def step(self, by: int) -> None:
        keys = [key for key, _ in self.states]
        self.active = keys[(keys.index(self.active) + by) % len(keys)]

    def action_step(self, by: int) -> None:
        self.step(by)
