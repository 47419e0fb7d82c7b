"""`qadmin users`: the web's users of `qadmin.toml` (`[users.NAME]`), listed, and the hashes their
tables hold made (`hash-password`, `new-token`). qadmin never writes the file: these commands
print the lines to paste into it."""

from __future__ import annotations

import sys

import click

from qadmin.access import User, hash_password, hash_token, new_token
from qadmin.cli.context import QadminCommand, current_settings
from qadmin.cli.output import make_console, markup, print_json
from qadmin.cli.params import json_option
from qadmin.errors import UsageError
from qadmin.text import visible


@click.group()
def users() -> None:
    """The web dashboard's users ([users.NAME] in qadmin.toml): list them, or make the hash
    of a password or a new API token to paste there."""


@users.command("list", cls=QadminCommand)
@json_option
def list_users(as_json: bool) -> None:
    """The users of qadmin.toml with their roles (never their hashes)."""
    config = current_settings().config
    entries: tuple[User, ...] = config.users
    if as_json:
        print_json([user.to_dict() for user in entries])
        return
    if not entries:
        where = config.path or "qadmin.toml (none found)"
        click.echo(
            f"No [users] in {visible(str(where))}: the dashboard has one shared password (or a start-up "
            "token), and whoever logs in with it is an admin."
        )
        return
    console = make_console()
    from rich.table import Table

    table = Table(header_style="bold")
    for column in ("NAME", "ROLE", "PASSWORD", "API TOKEN"):
        table.add_column(column)
    for user in entries:
        table.add_row(
            markup(user.name),
            user.role.label,
            "yes" if user.password_hash else "-",
            "yes" if user.token_hash else "-",
        )
    console.print(table)


@users.command("hash-password")
def hash_password_command() -> None:
    """Ask for a password (twice, without echo; or read one line from standard input when it is
    not a terminal) and print the password_hash line for a [users.NAME] table. The password is
    never taken as an argument: it would stay in the shell's history and the process list."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("an empty password: nothing to hash")
    from qadmin.web.credentials import password_problem

    weak = password_problem(password)
    if weak:
        # the login form is throttled, so a weaker password still works there: say it, go on
        click.echo(f"qadmin: warning: {weak}", err=True)
    click.echo(f'password_hash = "{hash_password(password)}"')


@users.command("new-token")
def new_token_command() -> None:
    """Make a random API token for a script (`Authorization: Bearer TOKEN`) and print it once,
    with the token_hash line for its user's [users.NAME] table. Only the hash is kept there."""
    token = new_token()
    click.echo(f"token (shown once, give it to the script): {token}", err=True)
    click.echo(f'token_hash = "{hash_token(token)}"')
