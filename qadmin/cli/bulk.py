"""The bulk verbs: `retry`, `delete`, `dequeue`, `unlock`. Each previews, asks where it must,
applies to exactly the previewed jobs and reports."""

from __future__ import annotations

import sys

import click

from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import progress_bar, report
from qadmin.cli.params import (
    CLASS_HELP,
    build_selection,
    complete_classes,
    complete_queues,
    dry_run_option,
    duration,
    fingerprint_option,
    json_option,
    not_empty,
)
from qadmin.errors import UsageError
from qadmin.filters import JobFilter, parse_args_json
from qadmin.ops import BulkResult, alive_warning
from qadmin.text import plural


def _bulk(verb: str, selection: JobFilter, dry_run: bool, as_json: bool, confirm: bool = False) -> None:
    ops = current_ops()
    if selection.is_empty:
        raise UsageError(f"say which jobs to {verb}: give IDs or a filter (see qadmin {verb} --help)")
    preview = ops.preview(verb, selection)
    # jobs named by id of which none can be acted on are refused before anything is applied (or
    # audited): a dry run carries the reasons
    if dry_run or (selection.ids and preview.count == 0):
        report_or_refuse(ops.apply(preview, dry_run=True), as_json, verb, selection)
        return
    if confirm and preview.count:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to {verb} {plural(preview.count, 'job')} without --yes (or preview with --dry-run)"
            )
        if not click.confirm(f"{verb.capitalize()} {plural(preview.count, 'job')}?", default=False, err=True):
            click.echo("nothing changed", err=True)
            sys.exit(1)
    update, done = progress_bar(not as_json and preview.count > 1000, verb)
    try:
        result = ops.apply(preview, update)
    finally:
        done()
    report_or_refuse(result, as_json, verb, selection)


def report_or_refuse(result: BulkResult, as_json: bool, verb: str, selection: JobFilter, quiet: bool = False) -> None:
    """Report a bulk result; when the jobs named by id could none of them be acted on (unknown,
    or not in a state the verb acts on), that is bad input: one error line and exit 2."""
    acted = result.matched if result.dry_run else result.changed
    if selection.ids and acted == 0 and (result.skipped or result.matched == 0):
        first_id, reason = result.skipped[0] if result.skipped else (selection.ids[0], "it does not match")
        raise UsageError(f"cannot {verb} job {first_id}: {reason}")
    if not quiet:
        report(result, as_json, verb)


@click.command(cls=QadminCommand)
@click.argument("ids", nargs=-1)
@click.option("--failed", is_flag=True, help="All failed jobs (narrowed by the other options).")
@click.option("--queue", "-q", multiple=True, shell_complete=complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=complete_classes)
@click.option("--error", callback=not_empty, help="Only jobs that failed with this exact error (first line).")
@fingerprint_option
@dry_run_option
@json_option
def retry(
    ids: tuple[str, ...],
    failed: bool,
    queue: tuple[str, ...],
    class_name: str | None,
    error: str | None,
    fingerprint: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Make failed jobs pending again (attempts reset; their own workers run them)."""
    state = ("failed",) if failed else ()
    selection = build_selection(ids, state, queue, class_name, error=error, fingerprint=fingerprint)
    _bulk("retry", selection, dry_run, as_json)


@click.command(cls=QadminCommand)
@click.argument("ids", nargs=-1)
@click.option("--state", "-s", multiple=True)
@click.option("--queue", "-q", multiple=True, shell_complete=complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=complete_classes)
@click.option("--error", callback=not_empty, help="Only failed jobs with this error.")
@fingerprint_option
@click.option("--search", callback=not_empty, help="Text in the payload.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@dry_run_option
@json_option
def delete(
    ids: tuple[str, ...],
    state: tuple[str, ...],
    queue: tuple[str, ...],
    class_name: str | None,
    error: str | None,
    fingerprint: str | None,
    search: str | None,
    yes: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete jobs (asks first unless --yes)."""
    for word in ("finished", "cancelled"):
        if word in [s.lower() for s in state]:
            raise UsageError(f"{word} jobs are history: they are pruned after the retention window, not deleted")
    selection = build_selection(ids, state, queue, class_name, search=search, error=error, fingerprint=fingerprint)
    _bulk("delete", selection, dry_run, as_json, confirm=not yes)


@click.command(cls=QadminCommand)
@click.option("--queue", "-q", required=True, shell_complete=complete_queues)
@click.option("--class", "class_name", required=True, help=CLASS_HELP, shell_complete=complete_classes)
@click.option("--args", "args_json", help="Exact arguments as a JSON array (compared decoded).")
@click.option("--id", "job_ids", multiple=True, help="Only this job (repeatable).")
@dry_run_option
@json_option
def dequeue(
    queue: str, class_name: str, args_json: str | None, job_ids: tuple[str, ...], dry_run: bool, as_json: bool
) -> None:
    """Remove waiting jobs of a class (and exact args) from a queue, like Resque.dequeue."""
    ops = current_ops()
    args = parse_args_json(args_json) if args_json is not None else None
    ids = [ops.backend.parse_id(i) for i in job_ids]
    selection = JobFilter(ids=tuple(ids))
    if ids and not dry_run:  # refuse ids none of which is waiting before acting
        report_or_refuse(
            ops.dequeue(queue, class_name, args, job_ids=ids, dry_run=True), True, "dequeue", selection, quiet=True
        )
    update, done = progress_bar(not as_json, "dequeue")
    try:
        result = ops.dequeue(queue, class_name, args, job_ids=ids, dry_run=dry_run, progress=update)
    finally:
        done()
    report_or_refuse(result, as_json, "dequeue", selection)


@click.command(cls=QadminCommand)
@click.argument("ids", nargs=-1)
@click.option("--stale", is_flag=True, help="Locks of dead workers or older than the max run time.")
@click.option("--older-than", callback=duration, help="Locks older than this: 30m, 2h.")
@click.option("--worker", callback=not_empty, help="Locks held by this worker (substring of the lock owner).")
@click.option("--queue", "-q", multiple=True, shell_complete=complete_queues)
@click.option("--yes", "-y", is_flag=True, help="Unlock jobs whose worker looks alive without asking.")
@dry_run_option
@json_option
def unlock(
    ids: tuple[str, ...],
    stale: bool,
    older_than: float | None,
    worker: str | None,
    queue: tuple[str, ...],
    yes: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Free jobs held by workers that died, so that they run again. Jobs whose worker looks alive
    are unlocked only after a confirmation (or --yes): they may then run twice."""
    ops = current_ops()
    if not (ids or stale or older_than is not None or worker):
        raise UsageError("say which locks: IDs, --stale, --older-than or --worker")
    selection = build_selection(ids, (), queue, worker=worker)
    preview = ops.unlock_preview(selection, stale=stale, older_than=older_than)
    # ids none of which is locked are refused before anything is applied (or audited)
    if dry_run or (selection.ids and preview.count == 0):
        report_or_refuse(ops.apply(preview, dry_run=True), as_json, "unlock", selection)
        return
    alive = ops.alive_holders(preview)
    if alive and not yes:
        warning = alive_warning(alive, preview.count)
        if not sys.stdin.isatty():
            raise UsageError(f"not unlocking: {warning}; add --yes to unlock anyway (or preview with --dry-run)")
        click.echo(f"warning: {warning}", err=True)
        if not click.confirm(f"Unlock {plural(preview.count, 'job')} anyway?", default=False, err=True):
            click.echo("nothing changed", err=True)
            sys.exit(1)
    update, done = progress_bar(not as_json and preview.count > 1000, "unlock")
    try:
        result = ops.apply(preview, update)
    finally:
        done()
    report_or_refuse(result, as_json, "unlock", selection)
