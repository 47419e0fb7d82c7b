"""`cancel`: waiting jobs removed before they run, running ones interrupted by their qadmin worker,
each recorded as cancelled. Previews, asks where it must, applies and reports as run-now and kill
do."""

from __future__ import annotations

import click

from qadmin.cli.context import QadminCommand
from qadmin.cli.lifecycle import _lifecycle
from qadmin.cli.params import (
    CLASS_HELP,
    build_selection,
    complete_classes,
    complete_queues,
    dry_run_option,
    json_option,
)


@click.command(cls=QadminCommand)
@click.argument("ids", nargs=-1)
@click.option("--queue", "-q", multiple=True, shell_complete=complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=complete_classes)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before acting on the jobs a filter selects.")
@dry_run_option
@json_option
def cancel(
    ids: tuple[str, ...], queue: tuple[str, ...], class_name: str | None, yes: bool, dry_run: bool, as_json: bool
) -> None:
    """Cancel jobs: a pending or scheduled job is removed and never runs; one waiting for its
    external service is taken out of waiting (its service's report is then refused); a job a
    qadmin worker runs is interrupted by that worker within seconds (its heartbeat sees the
    request). All are then listed as cancelled (`qadmin jobs --state cancelled`). A job running in a delayed_job,
    DJJob or Resque worker cannot be cancelled: that worker cannot be told."""
    _lifecycle("cancel", "cancel", build_selection(ids, (), queue, class_name), yes, dry_run, as_json)
