"""`qadmin recurring` (list, add, remove, enable, disable, run-now) and `qadmin scheduler`, the
process that enqueues the schedules' jobs (`qadmin.scheduler`)."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import Any

import click

from qadmin.cli.context import GLOBAL_OPTIONS, Context, QadminCommand, current_ops, current_settings
from qadmin.cli.output import ago, make_console, markup, print_json
from qadmin.cli.params import at_most, dry_run_option, json_option, positive_duration
from qadmin.errors import UsageError
from qadmin.job_input import parse_args, parse_kwargs, parse_priority
from qadmin.ops import open_ops
from qadmin.recurring import SOURCE_API, RecurringEntry, Schedule, parse_every


class _Subcommand(QadminCommand):
    """A `qadmin recurring` subcommand: the backend options given after its name are checked
    against those given anywhere before it (after `qadmin` or after `recurring`)."""

    def invoke(self, ctx: click.Context) -> Any:
        state = ctx.find_object(Context)
        for flag, name, _extra, _text in GLOBAL_OPTIONS:
            value = ctx.params.pop(name, None)
            if value is None or state is None:
                continue
            before = state.given.get(name)
            if before is not None and before != value:
                raise UsageError(
                    f"{flag} given twice with different values ({before!r} before the command, "
                    f"{value!r} after it): give it once"
                )
            state.set(name, value)
        return click.Command.invoke(self, ctx)


class RecurringGroup(QadminCommand, click.Group):
    """`qadmin recurring`: lists the schedules alone, acts on one with a subcommand; takes the
    group's backend options after its name, as every command does."""

    command_class = _Subcommand


@click.group(cls=RecurringGroup, invoke_without_command=True)
@json_option
@click.pass_context
def recurring(ctx: click.Context, as_json: bool) -> None:
    """List recurring schedules with their next and last run, or act on one (add, remove,
    enable, disable, run-now). `qadmin scheduler` enqueues their jobs."""
    if ctx.invoked_subcommand is not None:
        if as_json:
            raise UsageError("--json goes after the subcommand: qadmin recurring SUBCOMMAND ... --json")
        return
    ops = current_ops()
    entries = ops.recurring.entries()
    now = ops.clock()
    if as_json:
        print_json([e.to_dict(now) for e in entries])
        return
    _table(entries, now)


def _table(entries: list[RecurringEntry], now: datetime, title: str | None = None) -> None:
    from rich.table import Table

    console = make_console()
    if not entries and title is None:
        console.print(
            markup("no recurring schedules (add one with `qadmin recurring add`, or [recurring.NAME] in qadmin.toml)")
        )
        return
    table = Table(header_style="bold", title=title)
    for column in ("NAME", "TIMING", "CLASS", "QUEUE", "NEXT RUN", "LAST RUN", "ENABLED", "SOURCE"):
        table.add_column(column)
    for entry in entries:
        s = entry.schedule
        nxt = entry.next_run(now)
        table.add_row(
            markup(s.name),
            markup(s.timing),
            markup(s.job_class),
            markup(s.queue or "(default)"),
            _when(nxt, now) if nxt else "-",
            _when(entry.last_run_at, now) if entry.last_run_at else "never",
            "yes" if s.enabled else "[dim]no[/dim]",
            markup(s.source),
        )
    console.print(table)


def _when(moment: datetime, now: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({ago(moment, now)})"


def _report(entry: RecurringEntry, verb: str, dry_run: bool, as_json: bool) -> None:
    now = current_ops().clock()
    if as_json:
        print_json({"dry_run": dry_run, "verb": verb, "schedule": entry.to_dict(now)})
        return
    _table([entry], now, f"dry run: would {verb} (nothing changed)" if dry_run else None)


@recurring.command("enable")
@click.argument("name")
@dry_run_option
@json_option
def enable(name: str, dry_run: bool, as_json: bool) -> None:
    """Enable a schedule: it fires again from its next tick (the ticks it missed are not caught up)."""
    _report(current_ops().recurring.enable(name, dry_run=dry_run), "enable", dry_run, as_json)


@recurring.command("disable")
@click.argument("name")
@dry_run_option
@json_option
def disable(name: str, dry_run: bool, as_json: bool) -> None:
    """Disable a schedule: no tick enqueues a job until it is enabled (run-now still does)."""
    _report(current_ops().recurring.disable(name, dry_run=dry_run), "disable", dry_run, as_json)


@recurring.command("run-now")
@click.argument("name")
@dry_run_option
@json_option
def run_now(name: str, dry_run: bool, as_json: bool) -> None:
    """Enqueue a schedule's job now, enabled or not; its ticks go on as before."""
    ops = current_ops()
    ran = ops.recurring.run_now(name, dry_run=dry_run)
    new = ran.new
    if as_json:
        print_json(
            {
                "dry_run": ran.dry_run,
                "schedule": ran.entry.to_dict(ops.clock()),
                "job": ran.job.to_dict() if ran.job is not None else None,
                "would_enqueue": {
                    "class": new.class_name,
                    "args": new.args,
                    "kwargs": new.kwargs,
                    "queue": new.queue,
                    "priority": new.priority,
                },
            }
        )
        return
    what = f"{markup(new.class_name)} on queue {markup(new.queue)}"
    console = make_console()
    if ran.job is None:
        console.print(f"dry run: would enqueue {what} (nothing changed)")
    else:
        console.print(f"Enqueued job {markup(str(ran.job.id))}: {what}")


@recurring.command("add")
@click.argument("name")
@click.option("--class", "class_name", required=True, help="The job's class or function (a dotted path or @job name).")
@click.option("--cron", help="A cron expression, e.g. '*/5 * * * *' (give --cron or --every).")
@click.option("--timezone", help="The cron expression's time zone (an IANA name). Default UTC.")
@click.option("--every", help="A fixed interval, e.g. 30s, 5m, 1h30m (give --cron or --every).")
@click.option("--args", "args_json", help="Arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", help="Keyword arguments as a JSON object.")
@click.option("--queue", "-q", help="Queue (default: the job's own, else default).")
@click.option("--priority", help="Priority (lower runs first).")
@click.option("--description", default="", help="What it is for, shown on the consoles.")
@click.option("--disabled", is_flag=True, help="Store it disabled.")
@dry_run_option
@json_option
def add(
    name: str,
    class_name: str,
    cron: str | None,
    timezone: str | None,
    every: str | None,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    priority: str | None,
    description: str,
    disabled: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Create or replace a schedule (a replaced one keeps its memory of ticks: no tick fires twice)."""
    if (cron is None) == (every is None):
        raise UsageError("give --cron EXPR or --every INTERVAL, one of them")
    if timezone is not None and every is not None:
        raise UsageError("--timezone applies to --cron only (--every ticks in seconds)")
    fields: dict[str, Any] = {}
    if args_json is not None:
        fields["args"] = parse_args(args_json, "--args")
    if kwargs_json is not None:
        fields["kwargs"] = parse_kwargs(kwargs_json, "--kwargs")
    if queue is not None:
        if not queue.strip():
            raise UsageError("--queue must not be empty")
        fields["queue"] = queue
    if priority is not None:
        fields["priority"] = parse_priority(priority, "--priority")
    schedule = Schedule(
        name=name,
        job_class=class_name,
        cron=cron,
        every=None if every is None else parse_every(every),
        timezone=timezone or "UTC",
        description=description,
        enabled=not disabled,
        source=SOURCE_API,
        **fields,
    )
    _report(current_ops().recurring.save(schedule, dry_run=dry_run), "add", dry_run, as_json)


@recurring.command("remove")
@click.argument("name")
@dry_run_option
@json_option
def remove(name: str, dry_run: bool, as_json: bool) -> None:
    """Remove a schedule and its memory of ticks (one from qadmin.toml comes back when a scheduler
    starts, unless it is taken out of the file)."""
    ops = current_ops()
    entry = ops.recurring.get(name)
    ops.recurring.remove(name, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "removed": name, "schedule": entry.to_dict(ops.clock())})
        return
    make_console().print(f"dry run: would remove {markup(name)}" if dry_run else f"Removed schedule {markup(name)}.")


@click.command(cls=QadminCommand)
@click.option(
    "--poll",
    default="5",
    callback=at_most(3600, "1h", positive_duration),
    show_default=True,
    help="Longest sleep between passes (seconds or 30s, 1m): how soon schedules changed elsewhere are seen.",
)
@click.option("--once", is_flag=True, help="Store qadmin.toml's schedules, fire the ticks due, and exit.")
@click.option("-v", "--verbose", count=True, help="-v debug.")
def scheduler(poll: float, once: bool, verbose: int) -> None:
    """Enqueue recurring schedules' jobs, exactly once per tick however many schedulers run
    (on any number of hosts). Stores qadmin.toml's [recurring.NAME] schedules at start. Stops on
    SIGTERM or SIGINT."""
    from qadmin.scheduler import Scheduler

    _log_to_stderr(verbose)
    settings = current_settings()
    ops = open_ops(settings, face="scheduler")
    try:
        runner = Scheduler(ops, poll=poll, alerts=settings.config.alerts)
        runner.install_signal_handlers()
        # without a config file there is nothing to sync: the file's schedules are left as they are
        declared = settings.config.recurring if settings.config.path is not None else None
        code = runner.run(declared, once=once)
    finally:
        ops.close()
    sys.exit(code)


def _log_to_stderr(verbose: int) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(message)s",
        stream=sys.stderr,
    )
