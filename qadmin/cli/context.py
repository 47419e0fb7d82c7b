"""The group's machinery: the backend options every command takes (before or after its name),
the `Context` that turns them into `Settings` and `Ops` when a command first needs them (so that
`qadmin --help` touches nothing), and errors as one line on stderr with an exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from qadmin.cli.loading import loading
from qadmin.cli.registry import LazyCommands
from qadmin.errors import QadminError, UsageError
from qadmin.text import holds_lone_surrogate, visible

if TYPE_CHECKING:
    from qadmin.ops import Ops
    from qadmin.settings import Settings

#: the options of the group, which every subcommand also takes after its name: (flags, keyword,
#: extra click settings, help). `--url` and `--backend` fall back to the environment in `resolve`.
GLOBAL_OPTIONS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (
        "--url",
        "url",
        {},
        "Backend URL (sqlite://, postgresql://, mysql+pymysql://, redis://). "
        "Default sqlite:///qadmin.db, or the config file's default backend.",
    ),
    ("--backend", "backend_name", {}, "A named backend from qadmin.toml."),
    ("--config", "config_file", {"type": click.Path(dir_okay=False)}, "Config file (default ./qadmin.toml)."),
    ("--table", "table", {}, "SQL jobs table (default: delayed_jobs, or DJJob's jobs when that is what exists)."),
    ("--namespace", "namespace", {}, "Redis key namespace (default resque)."),
)


class Context:
    """What the command line said about the backend, resolved into `Settings` once, when a
    command first asks (after the options given behind the subcommand's name are merged in)."""

    def __init__(
        self,
        url: str | None = None,
        table: str | None = None,
        namespace: str | None = None,
        backend_name: str | None = None,
        config_file: str | None = None,
    ) -> None:
        self.given: dict[str, str | None] = {
            "url": url,
            "table": table,
            "namespace": namespace,
            "backend_name": backend_name,
            "config_file": config_file,
        }
        self._settings: Settings | None = None
        self._ops: Ops | None = None

    def set(self, option: str, value: str) -> None:
        """A group option given after the subcommand's name."""
        self.given[option] = value

    def settings(self) -> Settings:
        if self._settings is None:
            from qadmin.settings import resolve

            given = self.given
            self._settings = resolve(
                url=given["url"],
                backend=given["backend_name"],
                config_file=given["config_file"],
                table=given["table"],
                namespace=given["namespace"],
            )
        return self._settings

    def ops(self) -> Ops:
        if self._ops is None:
            with loading():  # the backend's modules and driver, and its connection
                from qadmin.ops import open_ops

                self._ops = open_ops(self.settings(), face="cli")
        return self._ops

    def close(self) -> None:
        if self._ops is not None:
            self._ops.close()


def current() -> Context:
    """The running command's Context (the group made it)."""
    state = click.get_current_context().find_object(Context)
    if state is None:
        raise RuntimeError("a qadmin command runs inside the qadmin group")
    return state


def current_settings() -> Settings:
    return current().settings()


def current_ops() -> Ops:
    return current().ops()


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, whatever the message held, then the exit status."""
    click.echo("qadmin: error: " + visible(" ".join(str(message).split())), err=True)
    sys.exit(code)


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The group's options as click decorators."""
    for flag, name, extra, text in reversed(GLOBAL_OPTIONS):
        f = click.option(flag, name, help=text, **extra)(f)
    return f


class QadminCommand(click.Command):
    """A subcommand that also takes the group's options after its name (`qadmin tui --url ...`):
    they are merged into the group's before the command runs. One value given in both places
    and differing is refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {opt for p in self.params for opt in p.opts}
        for flag, name, extra, text in GLOBAL_OPTIONS:
            if flag not in taken:
                self.params.append(click.Option([flag, name], help=f"{text} (Also before the command.)", **extra))

    def invoke(self, ctx: click.Context) -> Any:
        state = ctx.find_object(Context)
        group = ctx.parent
        for flag, name, _extra, _text in GLOBAL_OPTIONS:
            value = ctx.params.pop(name, None)
            if value is None or state is None or group is None:
                continue
            before = group.params.get(name)
            given_before = group.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
            if given_before and before != value:
                raise UsageError(
                    f"{flag} given twice with different values ({before!r} before the command, "
                    f"{value!r} after it): give it once"
                )
            state.set(name, value)
        return super().invoke(ctx)


class QadminGroup(click.Group):
    """Maps QadminError, and click's own usage errors, to one line on stderr and an exit status.
    Its commands may be `LazyCommands`: `--help` then lists them without importing them."""

    command_class = QadminCommand

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = self.commands
        if not isinstance(commands, LazyCommands):
            super().format_commands(ctx, formatter)
            return
        names = [n for n in self.list_commands(ctx) if n not in commands.loaded or not commands.loaded[n].hidden]
        if not names:
            return
        # click's own layout: three times the default spacing after the longest name
        limit = formatter.width - 6 - max(len(n) for n in names)
        with formatter.section("Commands"):
            formatter.write_dl([(n, commands.short_help(n, limit)) for n in names])

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # bytes that are not UTF-8 reach Python as lone surrogates, which no backend stores and
        # no terminal prints: refused here, once for every subcommand
        for number, arg in enumerate(args, 1):
            if holds_lone_surrogate(arg):
                raise UsageError(f"argument {number} ({visible(arg)}) is not valid UTF-8")
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QadminError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("qadmin: interrupted", err=True)
            sys.exit(130)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        no_args_help = getattr(click.exceptions, "NoArgsIsHelpError", ())
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except no_args_help as exc:  # `qadmin` alone prints the help, as click does
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            # click prints usage, a hint and the error on three lines; keep the error and the hint
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            fail(exc.format_message() + where, exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            click.echo("qadmin: aborted", err=True)
            sys.exit(1)
        except QadminError as exc:  # raised while closing the backend, after the command ran
            fail(str(exc), exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)
