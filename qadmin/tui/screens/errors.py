"""Page 3: failed jobs grouped by error fingerprint (exception class and normalised message,
`qadmin.fingerprints`); the highlighted group's sample and exact variants below the table; retry
or delete a whole group."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Static

from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.model import ErrorGroup
from qadmin.ops import Ops
from qadmin.text import plural, visible
from qadmin.tui.messages import ErrorGroupsLoaded
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.text import ago, cell, names, short, theme_style

#: groups listed
GROUPS = 200


#: exact variants the detail under the table lists
VARIANTS_SHOWN = 5


class ErrorsScreen(QadminScreen):
    DEFAULT_CSS = """
    #errors-detail {
        height: auto;
        max-height: 8;
        padding: 0 1;
        border-top: solid $panel;
    }
    """
    PAGE = "errors"
    WHAT = "errors"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Group's jobs", id="errors.open"),
        Binding("r", "retry_group", "Retry group", id="errors.retry"),
        Binding("d", "delete_group", "Delete group", id="errors.delete"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, ErrorGroup] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="errors-summary")
        yield DataTable(id="errors", cursor_type="row", zebra_stripes=True)
        yield Static("", id="errors-detail")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("COUNT", key="count")
        table.add_column("ERROR", key="error", width=50)
        table.add_column("QUEUES", key="queues")
        table.add_column("CLASSES", key="classes", width=22)
        table.add_column("FIRST FAILED", key="first")
        table.add_column("LAST FAILED", key="last")
        table.focus()
        super().on_mount()

    def fetch(self, ops: Ops, token: int, request: Any) -> Iterable[Message]:
        yield ErrorGroupsLoaded(ops.error_groups(limit=GROUPS))

    def on_error_groups_loaded(self, message: ErrorGroupsLoaded) -> None:
        message.stop()
        table = self.query_one(DataTable)
        now = self.app.ops.clock()
        current = self.current_group
        self.groups = {g.fingerprint: g for g in message.groups}
        table.clear()
        error_style = theme_style(self.app, "text-error", bold=True)
        for group in message.groups:
            classes = names(c.rsplit(".", 1)[-1] if isinstance(c, str) else c for c in group.classes or ())
            table.add_row(
                Text(str(group.count), style=error_style, justify="right"),
                cell(self.app.ops.redaction.text(group.pattern), 50),  # the row's key is the fingerprint
                cell(names(group.queues or ()), 40),
                cell(classes, 22),
                ago(group.first_failed_at, now),
                ago(group.last_failed_at, now),
                key=group.fingerprint,
            )
        if current is not None and current.fingerprint in self.groups:
            table.move_cursor(row=list(self.groups).index(current.fingerprint), animate=False)
        self.show_detail()
        total = sum(g.count for g in message.groups)
        self.query_one("#errors-summary", Static).update(
            Text(
                f"{plural(total, 'failed job')} in {plural(len(message.groups), 'group')} "
                "(by error fingerprint: ids, numbers, quoted values, e-mails, paths as placeholders)"
            )
        )

    @property
    def current_group(self) -> ErrorGroup | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.groups.get(str(key))

    def _selection(self) -> JobFilter | None:
        group = self.current_group
        if group is None:
            return None
        return JobFilter(states=frozenset({JobState.FAILED}), fingerprint=group.fingerprint)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_detail()

    def show_detail(self) -> None:
        """The highlighted group's fingerprint, sample and exact variants (what the pattern hides)."""
        group = self.current_group
        detail = self.query_one("#errors-detail", Static)
        if group is None:
            detail.update("")
            return
        now = self.app.ops.clock()
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{group.fingerprint}", style="bold")
        text.append(f"  first failed {ago(group.first_failed_at, now)}, last {ago(group.last_failed_at, now)}")
        text.append(f"  sample job {visible(str(group.sample_id))}\n", style="dim")
        total = len(group.variants) + group.variants_left_out
        text.append(f"{plural(total, 'exact message')}:\n")
        for variant in group.variants[:VARIANTS_SHOWN]:
            text.append(f"{variant.count:>6} ", style=theme_style(self.app, "text-error", bold=True))
            text.append(short(variant.error, 200) + "\n")
        if total > VARIANTS_SHOWN:
            text.append(f"       … and {total - VARIANTS_SHOWN} more", style="dim")
        text.rstrip()
        detail.update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        selection = self._selection()
        if selection is not None:
            self.app.show_jobs(selection)

    def _act(self, verb: str) -> None:
        selection, group = self._selection(), self.current_group
        if selection is not None and group is not None:
            self.app.start_bulk(
                verb,
                selection,
                f"the error group {group.fingerprint} “{short(self.app.ops.redaction.text(group.pattern), 60)}”",
                on_done=lambda _result: self.refresh_data(force=True),
            )

    def action_retry_group(self) -> None:
        self._act("retry")

    def action_delete_group(self) -> None:
        self._act("delete")
