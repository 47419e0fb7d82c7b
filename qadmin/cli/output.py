"""How the commands print: rich tables on a terminal (job data made safe with `visible`),
exact JSON with `--json`, a progress bar for long bulk actions."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from qadmin.cli.loading import loading
from qadmin.job import Job, JobState
from qadmin.ops import BulkResult
from qadmin.text import plural, visible, visible_json

if TYPE_CHECKING:
    from rich.console import Console

#: the colour of each state's name
STATE_STYLE = {
    "pending": "cyan",
    "scheduled": "blue",
    "locked": "yellow",
    "stale": "bold magenta",
    "failed": "bold red",
    "finished": "green",
    "cancelled": "dim",
    "waiting": "magenta",
}


def make_console(err: bool = False) -> Console:
    with loading():
        from rich.console import Console

    stream = sys.stderr if err else sys.stdout
    # piped output is read by people and tools alike: do not cut it to 80 columns
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=err, highlight=False, soft_wrap=False, width=width)


def print_json(value: Any) -> None:
    """Exact JSON, UTF-8 as it is, except what `visible` escapes on a terminal (C1 controls, bidi
    overrides, lone surrogates), written as `\\u` escapes: the same JSON value, nothing a terminal
    acts on. (json.dumps escapes the C0 controls itself.)"""
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    click.echo(visible_json(text))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{seconds / size:.0f}{unit}"
            break
    else:
        text = f"{seconds:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def state_text(job: Job) -> str:
    word = "stale" if job.stale else job.state.value
    if job.undecodable:
        return f"[{STATE_STYLE[word]}]{word}[/] [red]undecodable[/]"
    return f"[{STATE_STYLE[word]}]{word}[/]"


def markup(value: Any, lines: bool = False) -> str:
    """Job data (or anything else read from a backend or typed by a user) made safe on a terminal
    (`qadmin.text.visible`, as all the CLI prints) and escaped for rich: `[bold]` prints as written."""
    from rich.markup import escape

    return escape(visible(value, lines))


def short(value: Any, width: int = 48) -> str:
    """One line of job data for a rich table, cut to `width`, made printable and escaped for rich."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    from rich.markup import escape

    text = visible(text.replace("\n", " "))
    return escape(text if len(text) <= width else text[: width - 1] + "…")


def progress_bar(enabled: bool, label: str) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A rich progress bar on a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=make_console(err=True),
        transient=True,
    )
    task = bar.add_task(label, total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


def report(result: BulkResult, as_json: bool, what: str) -> None:
    from qadmin.cli.context import current_ops

    result = current_ops().redaction.sampled(result)
    if as_json:
        print_json(result.to_dict())
        return
    console = make_console()
    if result.matched == 0:
        console.print(f"No jobs matched: nothing to {what}.")
        return
    if result.dry_run:
        console.print(f"[bold]Dry run:[/] {plural(result.matched, 'job')} would be {past_tense(what)}.")
        jobs_table(result.sample, console, title=f"sample of {len(result.sample)}")
    else:
        console.print(
            f"{past_tense(what).capitalize()} [bold]{result.changed}[/] of {plural(result.matched, 'matched job')}."
        )
    for job_id, reason in result.skipped[:20]:
        console.print(f"  [yellow]skipped[/] {markup(job_id)}: {markup(reason)}")
    if len(result.skipped) > 20:
        console.print(f"  … and {len(result.skipped) - 20} more skipped")


def past_tense(verb: str) -> str:
    return {
        "retry": "retried",
        "delete": "deleted",
        "dequeue": "dequeued",
        "unlock": "unlocked",
        "run-now": "run now",
        "kill": "killed",
        "cancel": "cancelled",
    }.get(verb, verb)


def jobs_table(jobs: Sequence[Job], console: Console, title: str | None = None) -> None:
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for column, width in column_widths(jobs, console.width).items():
        table.add_column(column, overflow="fold" if column == "ID" else "ellipsis", no_wrap=column != "ID", width=width)
    for job in jobs:
        if job.state is JobState.FAILED:
            when = ago(job.failed_at, now)
        elif job.state is JobState.LOCKED:
            when = f"locked {ago(job.locked_at, now)}"
        elif job.state in (JobState.FINISHED, JobState.CANCELLED):
            when = ago(job.finished_at, now)
        else:
            when = ago(job.run_at, now)
        if job.undecodable:
            error = "[red]undecodable:[/] " + short(job.undecodable, 200)
        elif job.error_message and job.state is not JobState.FAILED:  # history: retried since
            error = f"[dim]last attempt: {short(job.error_message, 200)}[/]"
        else:
            error = short(job.error_message or "", 200)
        table.add_row(
            short(str(job.id), 200),
            state_text(job),
            short(job.queue or "", 200),
            short(job.class_name, 200),
            short(job.args, 200),
            str(job.priority),
            str(job.attempts),
            when,
            error,
        )
    console.print(table)


def column_widths(jobs: Sequence[Job], total: int) -> dict[str, int]:
    """Explicit widths that always fit the console: fixed columns first, the rest shared."""
    fixed = {"ID": max([len(str(j.id)) for j in jobs] + [2]), "STATE": 9, "QUEUE": 8, "PRI": 3, "ATT": 3, "WHEN": 9}
    # ids are copied from here into other commands: never cut one short (Redis ids run to ~50)
    fixed["ID"] = min(fixed["ID"], max(total // 3, 12))
    spare = max(total - sum(fixed.values()) - 2 * 9, 24)
    flexible = {"CLASS": spare * 35 // 100, "ARGS": spare * 25 // 100}
    flexible["ERROR"] = spare - flexible["CLASS"] - flexible["ARGS"]
    order = ("ID", "STATE", "QUEUE", "CLASS", "ARGS", "PRI", "ATT", "WHEN", "ERROR")
    widths = {**fixed, **flexible}
    return {c: widths[c] for c in order}
