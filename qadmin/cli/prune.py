"""`qadmin prune`: remove failed jobs, finished records and dead qadmin workers past their
retention (`[retention]` in qadmin.toml), or older than `--older-than`."""

from __future__ import annotations

import click

from qadmin.cli.context import QadminCommand, current_ops
from qadmin.cli.output import make_console, markup, print_json
from qadmin.cli.params import dry_run_option, duration, json_option
from qadmin.job import iso
from qadmin.text import plural


@click.command(cls=QadminCommand)
@click.option(
    "--older-than",
    callback=duration,
    help="Prune failed jobs and finished records older than this (30d, 12h), instead of their retention.",
)
@dry_run_option
@json_option
def prune(older_than: float | None, dry_run: bool, as_json: bool) -> None:
    """Remove failed jobs, finished records and dead qadmin workers older than their retention
    (qadmin.toml's [retention]: failed 30d, finished 7d, workers 1d by default). Resque's and
    delayed_job's own workers are left to their libraries."""
    report = current_ops().prune(older_than, dry_run=dry_run)
    if as_json:
        print_json(report.to_dict())
        return
    from rich.table import Table

    console = make_console()
    table = Table(header_style="bold", title="dry run: nothing changed" if dry_run else None)
    for column in ("KIND", "OLDER THAN", "WOULD GO" if dry_run else "PRUNED"):
        table.add_column(column)
    for kind, before, count in (
        ("failed jobs", report.failed_before, report.failed),
        ("finished records", report.finished_before, report.finished),
        ("dead workers", report.workers_before, report.workers),
    ):
        table.add_row(kind, iso(before) or "kept for ever", str(count))
    console.print(table)
    if report.worker_names:
        console.print("workers: " + ", ".join(markup(name) for name in report.worker_names))
    if not dry_run and report.total:
        console.print(f"Pruned {plural(report.total, 'item')}.")
