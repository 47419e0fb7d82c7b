"""The `qadmin` command line: parse, call the operations layer, print a rich table or `--json`.

Exit status: 0 success (also when a filter matched nothing), 1 an operation failed, 2 bad usage
or bad input. Errors are one line on stderr, never a traceback.

The group and its backend options are here; the commands live in modules by concern (`jobs`,
`bulk`, `queues`, `worker`, `serve`), sharing `output` (tables, JSON) and `params` (checks,
completion). `registry` names them all; a command's module is imported only when it runs.
"""

from __future__ import annotations

import click

from qadmin import __version__
from qadmin.cli.context import GLOBAL_OPTIONS, Context, QadminCommand, QadminGroup, global_options
from qadmin.cli.registry import COMMANDS, LazyCommands

__all__ = ["GLOBAL_OPTIONS", "Context", "QadminCommand", "QadminGroup", "main"]


@click.group(
    cls=QadminGroup,
    commands=LazyCommands(COMMANDS),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
