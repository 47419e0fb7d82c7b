"""Page 5: every admin action, who did it from which face, and what it changed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import DataTable, Static

from qadmin.ops import Ops
from qadmin.text import plural
from qadmin.tui.messages import AuditLoaded
from qadmin.tui.screens.base import QadminScreen
from qadmin.tui.text import cell, theme_style, ts

#: audit entries listed
ENTRIES = 500


class AuditScreen(QadminScreen):
    PAGE = "audit"
    WHAT = "audit"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="audit-summary")
        yield DataTable(id="audit", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (
            ("at", "AT (UTC)"),
            ("verb", "ACTION"),
            ("who", "BY"),
            ("face", "FROM"),
            ("selection", "SELECTION"),
            ("changed", "CHANGED"),
            ("skipped", "SKIPPED"),
        ):
            table.add_column(label, key=key)
        table.focus()
        super().on_mount()

    def fetch(self, ops: Ops, token: int, request: Any) -> Iterable[Message]:
        yield AuditLoaded(ops.redaction.audit(ops.audit(limit=ENTRIES)))

    def on_audit_loaded(self, message: AuditLoaded) -> None:
        message.stop()
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for e in message.entries:
            selection = " ".join(f"{k}={v}" for k, v in e.selection.items()) or "all jobs"
            skipped = Text(str(e.skipped), style=theme_style(self.app, "text-warning", bold=True)) if e.skipped else "0"
            table.add_row(
                ts(e.at),
                cell(e.verb + (" (dry run)" if e.dry_run else "")),
                cell(e.actor, 16),
                cell(e.face),
                cell(selection, 40),
                f"{e.changed} of {e.matched}",
                skipped,
            )
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), animate=False)
        self.query_one("#audit-summary", Static).update(
            Text(f"{plural(len(message.entries), 'most recent action')}, newest first")
        )
