"""`qadmin show ID`'s attempts: a table of the job's runs, and the backtrace of its latest failure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qadmin.cli.output import markup, short
from qadmin.job import Job
from qadmin.model import Attempt, Outcome
from qadmin.ops.attempts import from_columns_note
from qadmin.text import runtime_text, visible

if TYPE_CHECKING:  # rich is imported when something is printed, not when the CLI starts
    from rich.console import Console

#: a colour per outcome: green done, yellow tried again, red failed, magenta rescued from a dead worker
OUTCOME_STYLE = {
    Outcome.COMPLETED: "green",
    Outcome.RETRIED: "yellow",
    Outcome.FAILED: "red",
    Outcome.TIMED_OUT: "red",
    Outcome.CANCELLED: "bright_black",
    Outcome.RESCUED: "magenta",
    Outcome.WAITING: "cyan",
    Outcome.RUNNING: "blue",
}


def print_attempts(console: Console, job: Job, attempts: list[Attempt]) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    if not attempts:
        console.print("[dim]attempts: none (the job has not run)[/]")
        return
    table = Table(title="attempts", title_justify="left", expand=False)
    for name in ("#", "started", "duration", "worker", "outcome", "error"):
        table.add_column(name, justify="right" if name in ("#", "duration") else "left", no_wrap=name != "error")
    for a in attempts:
        started = a.started_at or a.finished_at
        outcome = f"[{OUTCOME_STYLE.get(a.outcome, 'red')}]{a.outcome.value}[/]"
        if a.source != "recorded":
            outcome += " [dim](from columns)[/]"
        table.add_row(
            "?" if a.number is None else str(a.number),
            "" if started is None else f"{'' if a.started_at else 'ended '}{started:%Y-%m-%d %H:%M:%S}",
            runtime_text(a.runtime),
            markup(a.worker or ""),
            outcome,
            short(a.error or "", 80),
        )
    console.print(table)
    note = from_columns_note(job, attempts)
    if note:
        console.print(f"[dim]{markup(note)}[/]")
    failed = next((a for a in reversed(attempts) if a.backtrace), None)
    if failed is not None:
        console.print(
            Panel(
                Text(visible(f"{failed.error}\n{failed.backtrace}".rstrip(), lines=True)),
                title=f"backtrace of attempt {failed.number if failed.number is not None else '?'}",
                border_style="red" if failed.outcome in (Outcome.FAILED, Outcome.TIMED_OUT) else "dim",
                expand=False,
            )
        )
