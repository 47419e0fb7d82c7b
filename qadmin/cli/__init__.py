"""The `qadmin` command line: parse, call the operations layer, print a rich table or `--json`.

Exit status: 0 success (also when a filter matched nothing), 1 an operation failed, 2 bad usage
or bad input. Errors are one line on stderr, never a traceback.

The group and its backend options are here; the commands live in modules by concern (`jobs`,
`bulk`, `queues`, `worker`, `serve`), sharing `output` (tables, JSON) and `params` (checks,
completion).
"""

from __future__ import annotations

import click

from qadmin import __version__
from qadmin.cli.bulk import delete, dequeue, retry, unlock
from qadmin.cli.cancel import cancel
from qadmin.cli.context import GLOBAL_OPTIONS, Context, QadminCommand, QadminGroup, global_options
from qadmin.cli.edit import edit
from qadmin.cli.insight import history, metrics
from qadmin.cli.jobs import enqueue, jobs, show
from qadmin.cli.lifecycle import kill, run_now
from qadmin.cli.prune import prune
from qadmin.cli.queues import audit, errors, pause, queues, resume, stats, workers
from qadmin.cli.recurring import recurring, scheduler
from qadmin.cli.serve import demo, init, tui, web
from qadmin.cli.waiting import complete, fail
from qadmin.cli.worker import worker

__all__ = ["GLOBAL_OPTIONS", "Context", "QadminCommand", "QadminGroup", "main"]


@click.group(cls=QadminGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="qadmin")
@global_options
@click.pass_context
def main(
    ctx: click.Context,
    url: str | None,
    backend_name: str | None,
    config_file: str | None,
    table: str | None,
    namespace: str | None,
) -> None:
    """Operate job queues: delayed_job and DJJob tables in SQL, Resque queues in Redis."""
    state = Context(url, table, namespace, backend_name, config_file)
    ctx.obj = state
    ctx.call_on_close(state.close)


for command in (
    init,
    enqueue,
    jobs,
    show,
    retry,
    delete,
    dequeue,
    unlock,
    run_now,
    kill,
    edit,
    cancel,
    complete,
    fail,
    stats,
    queues,
    workers,
    errors,
    audit,
    pause,
    resume,
    prune,
    recurring,
    scheduler,
    worker,
    demo,
    tui,
    web,
    metrics,
    history,
):
    main.add_command(command)
