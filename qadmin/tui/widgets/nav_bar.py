"""The top line: where you are, where you can go (and by which key), which backend."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from qadmin.tui.text import theme_style

#: mode name -> (key, label), in the order of the number keys
PAGES = (
    ("overview", "1", "Overview"),
    ("jobs", "2", "Jobs"),
    ("errors", "3", "Errors"),
    ("workers", "4", "Workers"),
    ("audit", "5", "Audit"),
)
#: pages the bar names only while one is shown: with them all, an 80-column bar has no room left
#: for the backend's name (`?` lists their keys)
MORE_PAGES = (("recurring", "6", "Recurring"), ("history", "7", "History"), ("metrics", "8", "Metrics"))


class NavBar(Static):
    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; }
    """

    def __init__(self, current: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.current = current

    def on_mount(self) -> None:
        self.watch(self.app, "backend_name", lambda _: self.redraw(), init=False)
        # after the new theme's colours are computed (a watch on "theme" would run before)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())
        self.redraw()

    def redraw(self) -> None:
        app = self.app
        text = Text(" qadmin ", style=theme_style(app, "text-accent", bold=True))
        for mode, key, label in PAGES + tuple(p for p in MORE_PAGES if p[0] == self.current):
            if mode == self.current:
                text.append(f" {key} {label} ", style=theme_style(app, "text-primary", bold=True) + Style(reverse=True))
            else:
                text.append(f" {key} ", style=theme_style(app, "text-accent"))
                text.append(f"{label} ")
        # "? help" stays visible however narrow the terminal: the footer may be cut off there
        text.append(" ? ", style=theme_style(app, "text-accent"))
        text.append("Help")
        backend = getattr(app, "backend_name", "") or ""
        if getattr(app, "read_only", False):
            backend += " · read-only"
        width = self.size.width or 80
        room = width - text.cell_len - 2
        if room < len(backend):
            backend = backend[: max(room - 1, 0)] + "…" if room > 8 else ""
        text.append(" " * max(width - text.cell_len - len(backend) - 1, 1))
        text.append(backend, style=theme_style(app, "text-muted"))
        self.update(text)

    def on_resize(self) -> None:
        self.redraw()
