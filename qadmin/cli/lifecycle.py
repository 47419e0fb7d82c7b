"""`run-now` and `kill`: a scheduled job made pending now, a job waiting for a retry failed for
good. Each previews, asks where it must (a filter rather than named jobs), applies to exactly the
previewed jobs and reports, as the bulk verbs do."""

from __future__ import annotations

import sys

import click

from qadmin.cli.bulk import report_or_refuse
from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import progress_bar
from qadmin.cli.params import (
    CLASS_HELP,
    build_selection,
    complete_classes,
    complete_queues,
    dry_run_option,
    json_option,
)
from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.text import plural


def _lifecycle(verb: str, command: str, selection: JobFilter, yes: bool, dry_run: bool, as_json: bool) -> None:
    """`verb` as the operations layer names it, `command` as the operator typed it."""
    ops = current_ops()
    if selection.is_empty:
        raise UsageError(f"say which jobs to {command}: give IDs or a filter (see qadmin {command} --help)")
    preview = ops.preview(verb, selection)
    # jobs named by id none of which can be acted on are refused before anything is applied (or
    # audited): a dry run carries the reasons
    if dry_run or (selection.ids and preview.count == 0):
        report_or_refuse(ops.apply(preview, dry_run=True), as_json, command, selection)
        return
    # jobs named one by one were chosen; a filter's matches are confirmed first
    if not selection.ids and preview.count and not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to {command} {plural(preview.count, 'job')} without --yes (or preview with --dry-run)"
            )
        if not click.confirm(f"{command.capitalize()} {plural(preview.count, 'job')}?", default=False, err=True):
            click.echo("nothing changed", err=True)
            sys.exit(1)
    update, done = progress_bar(not as_json and preview.count > 1000, command)
    try:
        result = ops.apply(preview, update)
    finally:
        done()
    report_or_refuse(result, as_json, command, selection)


@click.command("run-now", cls=QadminCommand)
@click.argument("ids", nargs=-1)
@click.option("--queue", "-q", multiple=True, shell_complete=complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=complete_classes)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before acting on the jobs a filter selects.")
@dry_run_option
@json_option
def run_now(
    ids: tuple[str, ...], queue: tuple[str, ...], class_name: str | None, yes: bool, dry_run: bool, as_json: bool
) -> None:
    """Run scheduled jobs now: a later job, or a retry waiting for its backoff, becomes pending
    (attempts and last error kept)."""
    _lifecycle("run_now", "run-now", build_selection(ids, (), queue, class_name), yes, dry_run, as_json)


@click.command(cls=QadminCommand)
@click.argument("ids", nargs=-1)
@click.option("--queue", "-q", multiple=True, shell_complete=complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=complete_classes)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before acting on the jobs a filter selects.")
@dry_run_option
@json_option
def kill(
    ids: tuple[str, ...], queue: tuple[str, ...], class_name: str | None, yes: bool, dry_run: bool, as_json: bool
) -> None:
    """Fail jobs waiting for a retry now, with no more attempts (attempts and error kept; retry
    brings them back). A scheduled job that never ran is not waiting for a retry: it is skipped."""
    _lifecycle("kill", "kill", build_selection(ids, (), queue, class_name), yes, dry_run, as_json)
