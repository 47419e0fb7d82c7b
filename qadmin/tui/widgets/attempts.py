"""A job's attempts on its detail page: one row per run (number, start, duration, worker, outcome
in its colour, the error's first line), then the backtrace of the latest run that has one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from qadmin.job import Job
from qadmin.model import FROM_COLUMNS, Attempt, Outcome
from qadmin.ops.attempts import from_columns_note
from qadmin.text import runtime_text
from qadmin.tui.text import clip, theme_style, ts

#: outcome -> theme variable its word is drawn in: success green, tried again amber, failed red
OUTCOME_COLOR = {
    Outcome.COMPLETED: "text-success",
    Outcome.RETRIED: "text-warning",
    Outcome.FAILED: "text-error",
    Outcome.TIMED_OUT: "text-error",
    Outcome.CANCELLED: "text-muted",
    Outcome.RESCUED: "text-accent",
    Outcome.WAITING: "text-secondary",
    Outcome.RUNNING: "text-primary",
}
#: characters of a run's first error line in the table, of its backtrace below it
ERROR_LINE = 120
BACKTRACE = 4000


def attempts_view(app: Any, job: Job, attempts: list[Attempt], now: datetime) -> RenderableType:
    if not attempts:
        return Text("none: the job has not run", style="dim")
    muted = theme_style(app, "text-muted")
    grid = Table.grid(padding=(0, 2))
    for justify in ("right", "left", "right", "left", "left"):
        grid.add_column(justify=justify, no_wrap=True)
    grid.add_column(no_wrap=True, overflow="ellipsis")  # one line a run: its backtrace is below
    for a in attempts:
        number = "?" if a.number is None else f"#{a.number}"
        started = ts(a.started_at) if a.started_at else (f"ended {ts(a.finished_at)}" if a.finished_at else "—")
        ran = runtime_text(a.runtime)
        if a.outcome is Outcome.RUNNING and a.started_at is not None:
            ran = runtime_text((now - a.started_at).total_seconds()) + "…"
        outcome = Text(a.outcome.value, style=theme_style(app, OUTCOME_COLOR.get(a.outcome, "text-error"), bold=True))
        if a.source == FROM_COLUMNS:
            outcome.append(" (from columns)", style=muted)
        grid.add_row(
            number,
            started,
            ran,
            clip(a.worker or "", 60, lines=False),
            outcome,
            clip(a.error or "", ERROR_LINE, lines=False),
        )
    parts: list[RenderableType] = [grid]
    note = from_columns_note(job, attempts)
    if note:
        parts.append(Text(note, style=muted))
    latest = next((a for a in reversed(attempts) if a.backtrace), None)
    if latest is not None and latest.backtrace is not None:
        label = "?" if latest.number is None else str(latest.number)
        if job.last_error and latest.backtrace.strip() in job.last_error:
            parts.append(Text(f"backtrace of attempt {label}: the error below", style=muted))
        else:
            parts.append(Text(f"backtrace of attempt {label}:", style="bold"))
            parts.append(clip(latest.backtrace, BACKTRACE, style=muted))
    return Group(*parts)
