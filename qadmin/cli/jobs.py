"""Single jobs: `enqueue` one, list them (`jobs`), `show` one in full."""

from __future__ import annotations

import json

import click

from qadmin.cli.attempts_view import print_attempts
from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import jobs_table, make_console, markup, print_json, short, state_text
from qadmin.cli.params import (
    MAX_COUNT,
    build_selection,
    complete_classes,
    complete_queues,
    duration,
    filter_options,
    json_option,
    not_empty,
    positive,
)
from qadmin.errors import UsageError
from qadmin.job import JobState
from qadmin.job_input import loose_json, parse_kwargs, parse_run_at, parse_timeout
from qadmin.ops.attempts import attempts_document
from qadmin.text import visible

#: characters of a raw payload `qadmin show` prints in a table view
RAW_SHOWN = 16_000


@click.command(cls=QadminCommand)
@click.argument("class_name", metavar="CLASS", shell_complete=complete_classes)
@click.argument("args", nargs=-1)
@click.option("--kwargs", "kwargs_json", help="Keyword arguments as a JSON object.")
@click.option("--queue", "-q", default=None, help="Queue name (default: default).", shell_complete=complete_queues)
@click.option(
    "--priority",
    "-p",
    type=click.IntRange(-MAX_COUNT - 1, MAX_COUNT),
    default=None,
    help="Lower runs first (default 0). SQL only: Redis (Resque) queues have none and refuse it.",
)
@click.option("--in", "delay", callback=duration, help="Run after a delay: 30s, 15m, 2h.")
@click.option("--at", "at", help="Run at an ISO 8601 time (UTC unless it has an offset).")
@click.option("--unique", help="A key: if a live job has it, that job is returned instead of a new one.")
@click.option("--max-attempts", type=int, callback=positive, help="Attempts before the job fails for good.")
@click.option(
    "--timeout",
    help="This job's time limit (30s, 15m, 2h), instead of the worker's --max-run-time; over it, the job fails.",
)
@json_option
def enqueue(
    class_name: str,
    args: tuple[str, ...],
    kwargs_json: str | None,
    queue: str | None,
    priority: int | None,
    delay: float | None,
    at: str | None,
    unique: str | None,
    max_attempts: int | None,
    timeout: str | None,
    as_json: bool,
) -> None:
    """Put a job on a queue. ARGs are JSON values where they parse (42, true, "[1,2]"), else strings."""
    if not class_name.strip():
        raise UsageError("CLASS must not be empty: name the job's class or function")
    values = [loose_json(a) for a in args]
    kwargs = parse_kwargs(kwargs_json, "--kwargs") if kwargs_json is not None else {}
    run_at = None
    if at is not None:
        if delay is not None:
            raise UsageError("give --in or --at, not both")
        run_at = parse_run_at(at, "--at")
    job = current_ops().enqueue(
        class_name,
        values,
        kwargs,
        queue=queue,
        priority=priority,
        run_at=run_at,
        delay=delay,
        max_attempts=max_attempts,
        unique=unique,
        timeout=parse_timeout(timeout, "--timeout") if timeout is not None else None,
    )
    if as_json:
        print_json(current_ops().redaction.job(job).to_dict())
    else:
        click.echo(
            f"enqueued job {visible(job.id)} ({visible(job.class_name)} on {visible(job.queue)}, {job.state.value})"
        )


@click.command(cls=QadminCommand)
@click.option("--state", "-s", multiple=True, help="pending, scheduled, locked, stale, failed, finished (repeatable).")
@filter_options
@click.option("--worker", callback=not_empty, help="Only locks held by this worker (substring).")
@click.option("--limit", "-n", type=int, default=50, show_default=True, callback=positive)
@click.option("--cursor", callback=not_empty, help="Continue after the page that printed this cursor.")
@click.option(
    "--sort", type=click.Choice(["id", "-id", "priority", "run_at", "-failed_at"]), default="id", show_default=True
)
@json_option
def jobs(
    state: tuple[str, ...],
    queue: tuple[str, ...],
    class_name: str | None,
    args_json: str | None,
    search: str | None,
    error: str | None,
    fingerprint: str | None,
    worker: str | None,
    limit: int,
    cursor: str | None,
    sort: str,
    as_json: bool,
) -> None:
    """List jobs, one keyset page at a time."""
    selection = build_selection((), state, queue, class_name, args_json, search, error, worker, fingerprint)
    ops = current_ops()
    page = ops.redaction.page(ops.list_jobs(selection, limit=limit, cursor=cursor, sort=sort))
    if as_json:
        print_json([j.to_dict() for j in page.jobs])
        if page.next_cursor:
            click.echo(f"next page: --cursor '{visible(page.next_cursor)}'", err=True)
        return
    console = make_console()
    if not page.jobs:
        console.print(f"No jobs match {markup(selection.describe())}.")
        return
    jobs_table(page.jobs, console)
    if page.next_cursor:
        console.print(f"[dim]more: qadmin jobs … --cursor '{markup(page.next_cursor)}'[/]")


@click.command(cls=QadminCommand)
@click.argument("job_id", metavar="ID")
@click.option("--reveal", is_flag=True, help="Show the values hidden by [redact] (passwords, tokens, cards…); audited.")
@json_option
def show(job_id: str, reveal: bool, as_json: bool) -> None:
    """Everything about one job: payload, timestamps, lock, error and audit history. Sensitive
    values are redacted (README: Sensitive arguments) unless --reveal is given."""
    ops = current_ops()
    job = ops.show(job_id)
    history = ops.audit(limit=50, job_id=job.id)
    job = ops.noted(job, history)  # a cancel that did not stop it: "… — it finished first"
    attempts = ops.attempts(job.id)
    redaction = ops.redaction
    if reveal:  # the CLI runs as an admin (qadmin.access): it may reveal, and the reveal is audited
        job = redaction.reveal(job)
    else:
        hidden = redaction.hides(job)
        job, history, attempts = redaction.job(job), redaction.audit(history), redaction.attempts(attempts)
        if hidden and not as_json:
            click.echo("some values are redacted: qadmin show ID --reveal shows them (audited)", err=True)
    if as_json:
        out = job.to_dict()
        out["raw"] = job.raw
        if job.display is not None:
            out["decoded"] = job.display
        if job.meta:
            out["meta"] = job.meta
        out["audit"] = [a.to_dict() for a in history]
        out["runs"] = attempts_document(attempts)
        print_json(out)
        return
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    console = make_console()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    data = job.to_dict()
    table.add_row("state", state_text(job))
    for key in (
        "id",
        "queue",
        "class",
        "priority",
        "attempts",
        "run_at",
        "locked_at",
        "locked_by",
        "failed_at",
        "created_at",
        "finished_at",
        "format",
    ):
        if data.get(key) not in (None, ""):
            table.add_row(key, short(str(data[key]), 500))
    if job.max_attempts:
        table.add_row("max_attempts", str(job.max_attempts))
    for key, value in (job.meta or {}).items():
        if key not in ("max_attempts",) and value not in (None, "", [], {}):
            table.add_row(key, short(value, 100))
    for key, value in job.kept_result.items():
        table.add_row(key, short(value, 2000))
    console.print(Panel(table, title=f"job {markup(job.id)}", expand=False))
    if job.undecodable:
        console.print(f"[red]undecodable:[/] {markup(job.undecodable, lines=True)}")
    else:
        payload = {"args": job.args, "kwargs": job.kwargs} if job.display is None else job.display
        text = visible(json.dumps(payload, indent=2, ensure_ascii=False, default=str), lines=True)
        console.print(Panel(Syntax(text, "json", word_wrap=True), title="decoded payload", expand=False))
    if job.last_error:
        # an error on a job that is not failed is history: the job was retried since
        failed = job.state is JobState.FAILED
        console.print(
            Panel(
                Text(visible(job.last_error.rstrip(), lines=True)),
                title="last error" if failed else "error of the last attempt (retried since)",
                border_style="red" if failed else "dim",
                expand=False,
            )
        )
    print_attempts(console, job, attempts)
    raw = job.raw
    if len(raw) > RAW_SHOWN:
        # a multi-megabyte payload would flood the terminal; --json prints all of it
        raw = raw[:RAW_SHOWN] + f"\n… {len(job.raw) - RAW_SHOWN} more characters (qadmin show {job.id} --json)"
    console.print(Panel(Text(visible(raw, lines=True)), title="raw payload", border_style="dim", expand=False))
    if history:
        for entry in history:
            console.print(
                f"[dim]{entry.at:%Y-%m-%d %H:%M:%S}[/] {markup(entry.verb)} "
                f"by {markup(entry.actor)} via {markup(entry.face)}"
            )
