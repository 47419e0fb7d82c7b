"""`qadmin users`: the web's users of `qadmin.toml` (`[users.NAME]`) with their roles and their last
action in the backend's audit log, and the hashes their tables hold made (`hash-password`,
`new-token`). qadmin never writes the file: these commands print the lines to paste into it."""

from __future__ import annotations

import sys
from typing import Any

import click

from qadmin.access import User, actor_name, hash_password, hash_token, new_token
from qadmin.cli.context import QadminCommand, current_ops, current_settings
from qadmin.cli.output import ago, make_console, markup, print_json
from qadmin.cli.params import json_option
from qadmin.errors import BackendUnavailable, MissingTable, UsageError
from qadmin.job import AuditEntry, iso
from qadmin.text import visible

#: how far back in the audit log the last actions are looked for
AUDIT_DEPTH = 1000


class UsersGroup(QadminCommand, click.Group):
    """`qadmin users`: lists the users alone (as `list`), or makes a hash with a subcommand; takes
    the group's backend options after its name, as every command does (the last actions are read
    from that backend)."""


@click.group(cls=UsersGroup, invoke_without_command=True)
@json_option
@click.pass_context
def users(ctx: click.Context, as_json: bool) -> None:
    """The web dashboard's users ([users.NAME] in qadmin.toml) with their roles and last actions,
    or make the hash of a password or a new API token to paste there."""
    if ctx.invoked_subcommand is None:
        _list(as_json)
    elif as_json:
        raise UsageError("--json goes after the subcommand: qadmin users list --json")


@users.command("list", cls=QadminCommand)
@json_option
def list_users(as_json: bool) -> None:
    """The users of qadmin.toml with their roles (never their hashes), and each one's last action
    through the web in the backend's audit log."""
    _list(as_json)


def _list(as_json: bool) -> None:
    config = current_settings().config
    entries: tuple[User, ...] = config.users
    last, unread = _last_actions(entries)
    if as_json:
        print_json([{**user.to_dict(), "last_action": _action(last.get(user.name))} for user in entries])
        return
    if not entries:
        where = config.path or "qadmin.toml (none found)"
        click.echo(
            f"No [users] in {visible(str(where))}: the dashboard has one shared password (or a start-up "
            "token), and whoever logs in with it is an admin."
        )
        if last:
            click.echo("Recent web actions by: " + ", ".join(visible(name) for name in last))
        return
    from rich.table import Table

    console = make_console()
    table = Table(header_style="bold")
    for column in ("NAME", "ROLE", "PASSWORD", "API TOKEN", "LAST ACTION"):
        table.add_column(column)
    now = current_ops().clock() if unread is None else None
    for user in entries:
        entry = last.get(user.name)
        shown = f"{markup(entry.verb)} {ago(entry.at, now)}" if entry is not None and now is not None else "-"
        table.add_row(
            markup(user.name),
            user.role.label,
            "yes" if user.password_hash else "-",
            "yes" if user.token_hash else "-",
            shown,
        )
    console.print(table)
    if unread is not None:
        console.print(f"(last actions unknown: {markup(unread)})")


def _last_actions(entries: tuple[User, ...]) -> tuple[dict[str, AuditEntry], str | None]:
    """Each user's latest web action among the audit log's last `AUDIT_DEPTH` entries (without
    users: each name the web's audit holds), and why they could not be read (a backend not
    created yet, or not reachable), or None."""
    names = {user.name for user in entries}
    try:
        audit = current_ops().audit(limit=AUDIT_DEPTH)
    except (BackendUnavailable, MissingTable) as exc:
        return {}, str(exc)
    last: dict[str, AuditEntry] = {}
    for entry in audit:  # newest first
        name = actor_name(entry.actor)
        if entry.face == "web" and (name in names or not names) and name not in last:
            last[name] = entry
    return last, None


def _action(entry: AuditEntry | None) -> dict[str, Any] | None:
    return None if entry is None else {"verb": entry.verb, "at": iso(entry.at), "actor": entry.actor}


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
