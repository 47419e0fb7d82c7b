"""`qadmin edit ID`: new args, kwargs, queue, priority or run time for one pending, scheduled or
failed job. A job that cannot be edited (locked, finished, a foreign row's arguments) is bad
input: one error line and exit 2, as the other verbs refuse a job they cannot act on."""

from __future__ import annotations

import json
from typing import Any

import click

from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import print_json
from qadmin.cli.params import MAX_COUNT, complete_queues, dry_run_option, json_option
from qadmin.job_input import parse_args, parse_kwargs, parse_run_at
from qadmin.text import visible, visible_json


@click.command(cls=QadminCommand)
@click.argument("job_id", metavar="ID")
@click.option("--args", "args_json", help="New positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", help="New keyword arguments as a JSON object ({} removes them).")
@click.option("--queue", "-q", default=None, help="Move the job to this queue.", shell_complete=complete_queues)
@click.option(
    "--priority",
    "-p",
    type=click.IntRange(-MAX_COUNT - 1, MAX_COUNT),
    default=None,
    help="Lower runs first. SQL only: Redis (Resque) queues have none and refuse it.",
)
@click.option("--at", "at", help="Run at this ISO 8601 time (UTC unless it has an offset); a past time: now.")
@dry_run_option
@json_option
def edit(
    job_id: str,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    priority: int | None,
    at: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Edit a pending, scheduled or failed job. Delayed_job (YAML) and DJJob (PHP) jobs keep their
    arguments (qadmin cannot write Ruby or PHP objects): their queue, priority and run time can
    change. Resque jobs on Redis have no kwargs and no priority."""
    ops = current_ops()
    # "[redacted]" copied from `qadmin show` stands for the value it hides (ops/redaction.py)
    args, kwargs = ops.redaction.restored_by_id(
        job_id,
        None if args_json is None else parse_args(args_json, "--args"),
        None if kwargs_json is None else parse_kwargs(kwargs_json, "--kwargs"),
    )
    result = ops.edit(
        job_id,
        args=args,
        kwargs=kwargs,
        queue=queue,
        priority=priority,
        run_at=None if at is None else parse_run_at(at, "--at"),
        dry_run=dry_run,
    )
    if as_json:
        print_json(ops.redaction.edit_document(result))
        return
    before, after = ops.redaction.edit_values(result)
    if not before:
        click.echo(f"job {visible(result.before.id)} already has these values: nothing changed")
        return
    head = "would edit" if dry_run else "edited"
    renamed = "" if result.after.id == result.before.id else f" (now {visible(result.after.id)})"
    click.echo(f"{head} job {visible(result.before.id)}{renamed}")
    for field in before:
        click.echo(f"  {field}: {_shown(before[field])} -> {_shown(after[field])}")


def _shown(value: Any) -> str:
    return visible_json(json.dumps(value, ensure_ascii=False))
