"""`complete` and `fail`: the external service's verdict on a waiting job (`qadmin.Waiting`),
reported by an operator or by the service's own callback script."""

from __future__ import annotations

import json
from typing import Any

import click

from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import print_json
from qadmin.cli.params import dry_run_option, json_option
from qadmin.errors import UsageError
from qadmin.job import Job
from qadmin.text import visible


def _report(verb: str, job: Job, dry_run: bool, as_json: bool) -> None:
    if as_json:
        print_json({"verb": verb, "id": str(job.id), "dry_run": dry_run, "changed": not dry_run})
        return
    done = {"complete": "completed", "fail": "failed"}[verb]
    click.echo(f"{'would have ' + done if dry_run else done} waiting job {visible(job.id)} ({visible(job.class_name)})")


@click.command(cls=QadminCommand)
@click.argument("job_id", metavar="ID")
@click.option("--result", "result_json", help="What the job returned, as JSON (kept with its finished record).")
@dry_run_option
@json_option
def complete(job_id: str, result_json: str | None, dry_run: bool, as_json: bool) -> None:
    """The external service a waiting job waits for has succeeded: the job is finished."""
    result: Any = None
    if result_json is not None:
        try:
            result = json.loads(result_json)
        except ValueError as exc:
            raise UsageError(f"--result is not JSON: {exc}") from None
    _report("complete", current_ops().complete_waiting(job_id, result, dry_run=dry_run), dry_run, as_json)


@click.command(cls=QadminCommand)
@click.argument("job_id", metavar="ID")
@click.option("--error", "error", required=True, help="What went wrong, kept as the job's last error.")
@dry_run_option
@json_option
def fail(job_id: str, error: str, dry_run: bool, as_json: bool) -> None:
    """The external service a waiting job waits for has failed: the job fails as a worker's would
    (retried after delayed_job's backoff, or failed at its last attempt)."""
    _report("fail", current_ops().fail_waiting(job_id, error, dry_run=dry_run), dry_run, as_json)
