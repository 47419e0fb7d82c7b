"""The line above the footer: is the backend answering, and how fresh is what you see."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from qadmin.tui.text import theme_style

#: status level -> (mark, theme variable)
LEVELS = {
    "ok": ("●", "text-success"),
    "slow": ("◌", "text-warning"),
    "error": ("▲", "text-error"),
    "wait": ("◌", "text-muted"),
}


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; background: $panel; }
    StatusLine.-error { background: $error-muted; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "status", lambda _: self.redraw(), init=False)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())
        self.redraw()

    def redraw(self) -> None:
        level, message = getattr(self.app, "status", ("wait", "connecting…"))
        mark, variable = LEVELS.get(level, LEVELS["wait"])
        text = Text(f"{mark} ", style=theme_style(self.app, variable, bold=True))
        text.append(message)
        self.set_class(level == "error", "-error")
        self.update(text)
