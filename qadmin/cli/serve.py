"""The commands that start something on a backend: `init`, `demo`, `tui` and `web`."""

from __future__ import annotations

import click

from qadmin.cli.context import QadminCommand, current_ops, current_settings
from qadmin.cli.output import print_json
from qadmin.cli.params import json_option, positive_duration
from qadmin.errors import ConfigError
from qadmin.text import visible


@click.command(cls=QadminCommand)
def init() -> None:
    """Create qadmin's tables if missing (SQL)."""
    ops = current_ops()
    ops.backend.init()
    click.echo(visible(f"ready: {ops.backend.where}"))


@click.command(cls=QadminCommand)
@click.option("--seed", type=int, default=7, show_default=True)
@json_option
def demo(seed: int, as_json: bool) -> None:
    """Fill the queue at --url with sample jobs in every state."""
    from qadmin.demo import fill

    counts = fill(current_ops().backend, seed=seed)
    if as_json:
        print_json(counts)
        return
    click.echo("demo jobs: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    click.echo("now try: qadmin stats · qadmin jobs --state failed · qadmin tui")


@click.command(cls=QadminCommand)
@click.option("--read-only", is_flag=True, help="Hide and refuse every action.")
@click.option("--refresh", default="2s", callback=positive_duration, help="Refresh interval.")
def tui(read_only: bool, refresh: float) -> None:
    """The terminal console."""
    try:
        from qadmin.tui.app import run as run_tui
    except ImportError as exc:
        raise ConfigError(f"the terminal console is not available: {exc}") from None
    run_tui(current_settings(), read_only=read_only, refresh=refresh)


@click.command(cls=QadminCommand)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, type=click.IntRange(1, 65535), show_default=True)
@click.option("--read-only", is_flag=True, help="Hide and refuse every action.")
@click.option(
    "--server",
    "server_name",
    type=click.Choice(["waitress", "granian"]),
    default="waitress",
    show_default=True,
    help="HTTP server: granian (pip install granian) handles HTTP in Rust, about half the CPU a view.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name browsers may use to reach the dashboard, besides IP addresses, localhost and --host "
    "(repeatable; also [web] allowed_hosts and QADMIN_WEB_ALLOWED_HOSTS). Others get 400.",
)
def web(host: str, port: int, read_only: bool, server_name: str, allowed_hosts: tuple[str, ...]) -> None:
    """The web dashboard (served by waitress, or granian)."""
    try:
        from qadmin.web.serve import serve
    except ImportError as exc:
        raise ConfigError(f"the web dashboard is not available: {exc}") from None
    serve(
        current_settings(),
        host=host,
        port=port,
        read_only=read_only,
        server_name=server_name,
        allowed_hosts=allowed_hosts,
    )
