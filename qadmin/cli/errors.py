"""`qadmin errors`: failed jobs grouped by error fingerprint (exception class plus normalised
message, `qadmin.fingerprints`), and `qadmin errors show FINGERPRINT`: one group's exact variants.
Retry or delete a group with `qadmin retry --fingerprint` / `qadmin delete --fingerprint`."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from qadmin.cli.context import current_ops
from qadmin.cli.output import ago, make_console, markup, print_json, short
from qadmin.cli.params import CLASS_HELP, complete_classes, complete_queues, json_option, positive
from qadmin.cli.recurring import RecurringGroup
from qadmin.errors import UsageError
from qadmin.filters import JobFilter
from qadmin.job import JobState
from qadmin.model import ErrorGroup
from qadmin.text import plural


class ErrorsGroup(RecurringGroup):
    """`qadmin errors`: lists the groups alone, shows one with `show`; the backend options go
    after either name, as `qadmin recurring` takes them."""


@click.group(cls=ErrorsGroup, invoke_without_command=True)
@click.option("--queue", "-q", multiple=True, shell_complete=complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=complete_classes)
@click.option("--limit", "-n", type=int, default=50, callback=positive)
@json_option
@click.pass_context
def errors(ctx: click.Context, queue: tuple[str, ...], class_name: str | None, limit: int, as_json: bool) -> None:
    """Failed jobs grouped by error fingerprint (exception class + message with ids, numbers,
    quoted values, e-mails, paths, URLs replaced), with counts; `errors show FINGERPRINT` lists a
    group's exact messages."""
    if ctx.invoked_subcommand is not None:
        if as_json or queue or class_name:
            raise UsageError("options go after the subcommand: qadmin errors show FINGERPRINT ...")
        return
    ops = current_ops()
    groups = ops.redaction.error_groups(
        ops.error_groups(
            JobFilter(states=frozenset({JobState.FAILED}), queues=queue, class_name=class_name), limit=limit
        )
    )
    if as_json:
        print_json([g.to_dict() for g in groups])
        return
    _table(groups)


def _table(groups: list[ErrorGroup]) -> None:
    console = make_console()
    if not groups:
        console.print("No failed jobs.")
        return
    from rich.table import Table

    table = Table(header_style="bold")
    wide = console.width >= 120
    # explicit widths that fit the console, texts cut with an ellipsis: left to itself, rich drops
    # whole no-wrap columns and crops the table's edge on a narrow terminal
    fixed = {"COUNT": max([len(str(g.count)) for g in groups] + [5]), "LAST FAILED": 11}
    if wide:
        fixed.update({"FINGERPRINT": 12, "FIRST FAILED": 12})
    spare = max(console.width - sum(fixed.values()) - 3 * (len(fixed) + 3) - 4, 24)
    widths = {"ERROR": spare * 50 // 100, "QUEUES": spare * 15 // 100}
    widths.update(fixed, CLASSES=spare - widths["ERROR"] - widths["QUEUES"])
    columns = ["COUNT", "FINGERPRINT", "ERROR", "QUEUES", "CLASSES", "FIRST FAILED", "LAST FAILED"]
    columns = [c for c in columns if c in widths]
    for c in columns:
        table.add_column(
            c, justify="right" if c == "COUNT" else "left", no_wrap=True, overflow="ellipsis", width=widths[c]
        )
    now = datetime.now(UTC)
    for g in groups:
        # the pattern, and a real message of the group under it when they differ
        error = short(g.pattern or g.error, 200)
        if g.error != g.pattern:
            error += "\n[dim]e.g. " + short(g.error, 200) + "[/]"
        cells = {
            "COUNT": f"[bold red]{g.count}[/]",
            "FINGERPRINT": g.fingerprint,
            "ERROR": error,
            "QUEUES": short(",".join(g.queues), 60),
            "CLASSES": short(", ".join(g.classes), 40),
            "FIRST FAILED": ago(g.first_failed_at, now),
            "LAST FAILED": ago(g.last_failed_at, now),
        }
        table.add_row(*(cells[c] for c in columns))
    console.print(table)
    console.print(
        "[dim]a group's messages: qadmin errors show FINGERPRINT; "
        "retry a group: qadmin retry --fingerprint FINGERPRINT [--dry-run][/]"
    )


@errors.command()
@click.argument("fingerprint")
@json_option
def show(fingerprint: str, as_json: bool) -> None:
    """One error group: its pattern, counts, sample, and its exact messages (variants)."""
    ops = current_ops()
    group = ops.redaction.error_groups([ops.error_group.group(fingerprint)])[0]
    if as_json:
        print_json(group.to_dict())
        return
    console = make_console()
    now = datetime.now(UTC)
    console.print(f"[bold]{markup(group.pattern)}[/]")
    for label, value in (
        ("fingerprint", group.fingerprint),
        ("failed jobs", str(group.count)),
        ("first failed", f"{ago(group.first_failed_at, now)} ({group.first_failed_at or '?'})"),
        ("last failed", f"{ago(group.last_failed_at, now)} ({group.last_failed_at or '?'})"),
        ("queues", ", ".join(group.queues)),
        ("classes", ", ".join(group.classes)),
        ("sample job", f"{group.sample_id}: {group.error}"),
    ):
        console.print(f"  [dim]{label:<13}[/]{markup(value)}")
    from rich.table import Table

    table = Table(header_style="bold", title=f"{plural(len(group.variants) + group.variants_left_out, 'variant')}")
    table.add_column("COUNT", justify="right", no_wrap=True)
    table.add_column("ERROR (exact first line)", overflow="fold")
    for variant in group.variants:
        table.add_row(str(variant.count), short(variant.error, 500))
    console.print(table)
    if group.variants_left_out:
        console.print(f"[dim]… and {plural(group.variants_left_out, 'more variant')}[/]")
    console.print(
        f"[dim]retry the group: qadmin retry --fingerprint {group.fingerprint} --dry-run; "
        f"its jobs: qadmin jobs --fingerprint {group.fingerprint}[/]"
    )
