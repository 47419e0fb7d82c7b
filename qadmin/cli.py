"""The `qadmin` command line: parse, call the operations layer, print a rich table or `--json`.

Exit status: 0 success (also when a filter matched nothing), 1 an operation failed, 2 bad usage
or bad input. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from qadmin import __version__
from qadmin.errors import ConfigError, QadminError, UsageError
from qadmin.filters import JobFilter, parse_args_json, parse_states
from qadmin.job import Job, JobState
from qadmin.text import holds_lone_surrogate, plural, visible, visible_json

#: environment variable for --url
URL_ENV = "QADMIN_URL"
#: characters of a raw payload `qadmin show` prints in a table view
RAW_SHOWN = 16_000


# --- context: settings -> ops, built lazily so `qadmin --help` touches nothing ----------------
class Context:
    def __init__(
        self,
        url: str | None,
        table: str | None,
        namespace: str | None,
        backend_name: str | None,
        config_file: str | None,
        from_env: frozenset[str] = frozenset(),
    ) -> None:
        self.url_option = url
        self.table = table
        self.namespace = namespace
        self.backend_name = backend_name
        self.config_file = config_file
        #: the options whose value came from the environment (a command line overrides those)
        self.from_env = set(from_env)
        self._ops: Any = None

    def set(self, option: str, value: str) -> None:
        """A group option given after the subcommand's name."""
        setattr(
            self,
            {
                "url": "url_option",
                "backend_name": "backend_name",
                "config_file": "config_file",
                "table": "table",
                "namespace": "namespace",
            }[option],
            value,
        )
        self.from_env.discard(option)

    def settings(self) -> tuple[str, Any]:
        from qadmin.backends import BackendOptions
        from qadmin.config import DEFAULT_URL, load_config

        for flag, value in (
            ("--url", self.url_option),
            ("--backend", self.backend_name),
            ("--table", self.table),
            ("--namespace", self.namespace),
        ):
            if value is not None and not value.strip():
                raise UsageError(f"{flag} must not be empty")
            if value is not None and holds_lone_surrogate(value):  # from the environment (arguments are checked)
                raise UsageError(f"{flag} ({visible(value)}) is not valid UTF-8")
        config = load_config(self.config_file)
        table, namespace = self.table, self.namespace
        # a named backend is looked up even beside --url: a misspelt name is never dropped silently
        entry = config.backend(self.backend_name) if self.backend_name else None
        use_url = bool(self.url_option)
        if self.url_option and entry is not None:
            # one from the environment and one from the command line: the command line wins
            if ("url" in self.from_env) == ("backend_name" in self.from_env):
                raise UsageError("give --url or --backend, not both")
            use_url = "url" not in self.from_env
        if use_url:
            url = self.url_option
        elif entry is not None or config.default:
            entry = entry or config.backend(None)
            url = entry.url
            table = table or entry.table
            namespace = namespace or entry.namespace
        else:
            url = DEFAULT_URL
        redis = url.split("://", 1)[0].lower().split("+", 1)[0] in ("redis", "rediss")
        if redis and table is not None:
            raise UsageError("--table names a SQL table; a Redis backend takes --namespace")
        if not redis and self.namespace is not None:
            raise UsageError("--namespace names Redis keys; a SQL backend takes --table")
        return url, BackendOptions(table=table, namespace=namespace or "resque")

    def ops(self, face: str = "cli") -> Any:
        if self._ops is None:
            from qadmin.ops import Ops

            url, options = self.settings()
            self._ops = Ops.open(url, options=options, face=face)
        return self._ops

    def close(self) -> None:
        if self._ops is not None:
            self._ops.close()


def _fail(message: str, code: int) -> None:
    """One line on stderr, whatever the message held, then the exit status."""
    click.echo("qadmin: error: " + visible(" ".join(str(message).split())), err=True)
    sys.exit(code)


#: the options of the group, which every subcommand also takes after its name: (flags, keyword,
#: environment variable, extra click settings, help)
GLOBAL_OPTIONS: tuple[tuple[str, str, str | None, dict[str, Any], str], ...] = (
    (
        "--url",
        "url",
        URL_ENV,
        {},
        "Backend URL (sqlite://, postgresql://, mysql+pymysql://, redis://). "
        "Default sqlite:///qadmin.db, or the config file's default backend.",
    ),
    ("--backend", "backend_name", "QADMIN_BACKEND", {}, "A named backend from qadmin.toml."),
    ("--config", "config_file", None, {"type": click.Path(dir_okay=False)}, "Config file (default ./qadmin.toml)."),
    ("--table", "table", None, {}, "SQL jobs table (default: delayed_jobs, or DJJob's jobs when that is what exists)."),
    ("--namespace", "namespace", None, {}, "Redis key namespace (default resque)."),
)


def _global_options(with_env: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The group's options as click decorators: the group reads the environment too; the copies a
    subcommand carries read only its own command line."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for flag, name, env, extra, text in reversed(GLOBAL_OPTIONS):
            f = click.option(flag, name, envvar=env if with_env else None, help=text, **extra)(f)
        return f

    return decorate


class QadminCommand(click.Command):
    """A subcommand that also takes the group's options after its name (`qadmin tui --url ...`):
    they are merged into the group's settings before the command runs. One value given in both
    places and differing is refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {opt for p in self.params for opt in p.opts}
        for flag, name, _env, extra, text in GLOBAL_OPTIONS:
            if flag not in taken:
                self.params.append(click.Option([flag, name], help=f"{text} (Also before the command.)", **extra))

    def invoke(self, ctx: click.Context) -> Any:
        state = ctx.find_object(Context)
        group = ctx.parent
        for flag, name, _env, _extra, _text in GLOBAL_OPTIONS:
            value = ctx.params.pop(name, None)
            if value is None or state is None or group is None:
                continue
            before = group.params.get(name)
            given_before = group.get_parameter_source(name) not in (
                None,
                click.core.ParameterSource.DEFAULT,
                click.core.ParameterSource.ENVIRONMENT,
            )
            if given_before and before != value:
                raise UsageError(
                    f"{flag} given twice with different values ({before!r} before the command, "
                    f"{value!r} after it): give it once"
                )
            state.set(name, value)
        return super().invoke(ctx)


class QadminGroup(click.Group):
    """Maps QadminError, and click's own usage errors, to one line on stderr and an exit status."""

    command_class = QadminCommand

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
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("qadmin: interrupted", err=True)
            sys.exit(130)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        no_args_help = getattr(click.exceptions, "NoArgsIsHelpError", ())
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except no_args_help as exc:  # `qadmin` alone prints the help, as click does
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            # click prints usage, a hint and the error on three lines; keep the error and the hint
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            _fail(exc.format_message() + where, exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            click.echo("qadmin: aborted", err=True)
            sys.exit(1)
        except QadminError as exc:  # raised while closing the backend, after the command ran
            _fail(str(exc), exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def _obj() -> Context:
    return click.get_current_context().find_object(Context)  # type: ignore[return-value]


def _ops() -> Any:
    return _obj().ops()


# --- output helpers ---------------------------------------------------------------------------
STATE_STYLE = {
    "pending": "cyan",
    "scheduled": "blue",
    "locked": "yellow",
    "stale": "bold magenta",
    "failed": "bold red",
    "finished": "green",
}


def _console(err: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if err else sys.stdout
    # piped output is read by people and tools alike: do not cut it to 80 columns
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=err, highlight=False, soft_wrap=False, width=width)


def _print_json(value: Any) -> None:
    """Exact JSON, UTF-8 as it is, except what `visible` escapes on a terminal (C1 controls, bidi
    overrides, lone surrogates), written as `\\u` escapes: the same JSON value, nothing a terminal
    acts on. (json.dumps escapes the C0 controls itself.)"""
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    click.echo(visible_json(text))


def _ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{seconds / size:.0f}{unit}"
            break
    else:
        text = f"{seconds:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def _state_text(job: Job) -> str:
    word = "stale" if job.stale else job.state.value
    if job.undecodable:
        return f"[{STATE_STYLE[word]}]{word}[/] [red]undecodable[/]"
    return f"[{STATE_STYLE[word]}]{word}[/]"


def _markup(value: Any, lines: bool = False) -> str:
    """Job data (or anything else read from a backend or typed by a user) made safe on a terminal
    (`qadmin.text.visible`, as all the CLI prints) and escaped for rich: `[bold]` prints as written."""
    from rich.markup import escape

    return escape(visible(value, lines))


def _short(value: Any, width: int = 48) -> str:
    """One line of job data for a rich table, cut to `width`, made printable and escaped for rich."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    from rich.markup import escape

    text = visible(text.replace("\n", " "))
    return escape(text if len(text) <= width else text[: width - 1] + "…")


def _progress(enabled: bool, label: str) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A rich progress bar on a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(err=True),
        transient=True,
    )
    task = bar.add_task(label, total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


def _report(result: Any, as_json: bool, what: str) -> None:
    if as_json:
        _print_json(result.to_dict())
        return
    console = _console()
    if result.matched == 0:
        console.print(f"No jobs matched: nothing to {what}.")
        return
    if result.dry_run:
        console.print(f"[bold]Dry run:[/] {plural(result.matched, 'job')} would be {_past(what)}.")
        _jobs_table(result.sample, console, title=f"sample of {len(result.sample)}")
    else:
        console.print(
            f"{_past(what).capitalize()} [bold]{result.changed}[/] of {plural(result.matched, 'matched job')}."
        )
    for job_id, reason in result.skipped[:20]:
        console.print(f"  [yellow]skipped[/] {_markup(job_id)}: {_markup(reason)}")
    if len(result.skipped) > 20:
        console.print(f"  … and {len(result.skipped) - 20} more skipped")


def _past(verb: str) -> str:
    return {"retry": "retried", "delete": "deleted", "dequeue": "dequeued", "unlock": "unlocked"}.get(verb, verb)


def _jobs_table(jobs: Sequence[Job], console: Any, title: str | None = None) -> None:
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for column, width in _column_widths(jobs, console.width).items():
        table.add_column(column, overflow="fold" if column == "ID" else "ellipsis", no_wrap=column != "ID", width=width)
    for job in jobs:
        if job.state is JobState.FAILED:
            when = _ago(job.failed_at, now)
        elif job.state is JobState.LOCKED:
            when = f"locked {_ago(job.locked_at, now)}"
        elif job.state is JobState.FINISHED:
            when = _ago(job.finished_at, now)
        else:
            when = _ago(job.run_at, now)
        if job.undecodable:
            error = "[red]undecodable:[/] " + _short(job.undecodable, 200)
        elif job.error_message and job.state is not JobState.FAILED:  # history: retried since
            error = f"[dim]last attempt: {_short(job.error_message, 200)}[/]"
        else:
            error = _short(job.error_message or "", 200)
        table.add_row(
            _short(str(job.id), 200),
            _state_text(job),
            _short(job.queue or "", 200),
            _short(job.class_name, 200),
            _short(job.args, 200),
            str(job.priority),
            str(job.attempts),
            when,
            error,
        )
    console.print(table)


def _column_widths(jobs: Sequence[Job], total: int) -> dict[str, int]:
    """Explicit widths that always fit the console: fixed columns first, the rest shared."""
    fixed = {"ID": max([len(str(j.id)) for j in jobs] + [2]), "STATE": 9, "QUEUE": 8, "PRI": 3, "ATT": 3, "WHEN": 9}
    # ids are copied from here into other commands: never cut one short (Redis ids run to ~50)
    fixed["ID"] = min(fixed["ID"], max(total // 3, 12))
    spare = max(total - sum(fixed.values()) - 2 * 9, 24)
    flexible = {"CLASS": spare * 35 // 100, "ARGS": spare * 25 // 100}
    flexible["ERROR"] = spare - flexible["CLASS"] - flexible["ARGS"]
    order = ("ID", "STATE", "QUEUE", "CLASS", "ARGS", "PRI", "ATT", "WHEN", "ERROR")
    widths = {**fixed, **flexible}
    return {c: widths[c] for c in order}


def _selection(
    ids: Sequence[str],
    state: Sequence[str] = (),
    queue: Sequence[str] = (),
    class_name: str | None = None,
    args: str | None = None,
    search: str | None = None,
    error: str | None = None,
    worker: str | None = None,
) -> JobFilter:
    ops = _ops()
    parsed_ids = tuple(ops.backend.parse_id(i) for i in ids)
    states = parse_states(state)
    return JobFilter(
        states=states,
        queues=tuple(queue),
        class_name=class_name,
        args=tuple(parse_args_json(args)) if args is not None else None,
        search=search,
        ids=parsed_ids,
        error=error,
        locked_by=worker,
        stale_only="stale" in [s.lower() for s in state],
    )


#: the largest count an option takes (delayed_job's integer columns are 32-bit)
MAX_COUNT = 2**31 - 1


def _positive(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and not value >= 1:  # `not >=` also refuses NaN
        raise click.BadParameter("must be at least 1")
    if value is not None and value > MAX_COUNT:
        raise click.BadParameter(f"must be at most {MAX_COUNT}")
    return value


def _not_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An empty text would be dropped (--search, --cursor) or select everything (--worker '' is in
    every lock owner's name): refused instead."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


def _non_negative(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and value < 0:
        raise click.BadParameter("must not be negative")
    return value


def _duration(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    from qadmin.config import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _positive_duration(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A duration where 0 cannot work: a max run time of 0 expires every lock at once, a refresh
    every 0 s never rests."""
    seconds = _duration(ctx, param, value)
    if seconds is not None and seconds <= 0:
        raise click.BadParameter("must be more than 0")
    return seconds


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _strict_json(text: str) -> Any:
    """JSON as every Resque client reads it back: no NaN, no Infinity, no numbers out of range, no
    lone surrogate (`"\\ud800"` is valid JSON but no text: no backend can store it as UTF-8)."""
    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    if holds_lone_surrogate(value):
        raise ValueError("a \\u escape names a lone surrogate, which is not text")
    return value


#: how many jobs, newest first, class names are completed from (a sample: completion must be quick)
COMPLETION_SAMPLE = 1000
CLASS_HELP = "Job class: its full name, or a prefix of it or of its last part, in any case (SendEmail, sendem)."


def _completion_ops(ctx: click.Context) -> Any:
    """Ops for the backend the command line names so far. While completing, click parses without
    running the group's callback, so the options are read from the parsed contexts (before and
    after the subcommand's name, and the environment)."""
    values: dict[str, Any] = {}
    for level in reversed([c for c in (ctx.parent, ctx) if c is not None]):
        for _flag, name, _env, _extra, _text in GLOBAL_OPTIONS:
            if level.params.get(name) is not None:
                values.setdefault(name, level.params[name])
    values.setdefault("url", os.environ.get(URL_ENV) or None)
    values.setdefault("backend_name", os.environ.get("QADMIN_BACKEND") or None)
    state = Context(
        values.get("url"),
        values.get("table"),
        values.get("namespace"),
        values.get("backend_name"),
        values.get("config_file"),
    )
    return state, state.ops()


def _completions(ctx: click.Context, incomplete: str, names: Callable[[Any], Sequence[str]]) -> list[str]:
    from qadmin.filters import fold

    try:
        state, ops = _completion_ops(ctx)
        try:
            found = names(ops)
        finally:
            state.close()
    except Exception:  # noqa: BLE001 - a completion that cannot reach the backend offers nothing
        return []
    return sorted(n for n in set(found) if n and fold(n).startswith(fold(incomplete)))


def _complete_queues(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _completions(ctx, incomplete, lambda ops: ops.queue_names())


def _complete_classes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Full class names and their last parts (both select the class), from the newest jobs and
    the most recently failed ones."""
    return _completions(ctx, incomplete, lambda ops: ops.class_names(COMPLETION_SAMPLE, short=True))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")


# --- the commands -----------------------------------------------------------------------------
@click.group(cls=QadminGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="qadmin")
@_global_options(with_env=True)
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
    from_env = frozenset(
        name
        for name in ("url", "backend_name")
        if ctx.get_parameter_source(name) is click.core.ParameterSource.ENVIRONMENT
    )
    state = Context(url, table, namespace, backend_name, config_file, from_env)
    ctx.obj = state
    ctx.call_on_close(state.close)


@main.command()
def init() -> None:
    """Create qadmin's tables if missing (SQL)."""
    ops = _ops()
    ops.backend.init()
    where = f"{getattr(ops.backend, 'safe_url', '')} ({getattr(ops.backend, 'table_name', '')})"
    click.echo(visible(f"ready: {where}".strip()))


@main.command()
@click.argument("class_name", metavar="CLASS", shell_complete=_complete_classes)
@click.argument("args", nargs=-1)
@click.option("--kwargs", "kwargs_json", help="Keyword arguments as a JSON object.")
@click.option("--queue", "-q", default=None, help="Queue name (default: default).", shell_complete=_complete_queues)
@click.option(
    "--priority",
    "-p",
    type=click.IntRange(-MAX_COUNT - 1, MAX_COUNT),
    default=None,
    help="Lower runs first (default 0). SQL only: Redis (Resque) queues have none and refuse it.",
)
@click.option("--in", "delay", callback=_duration, help="Run after a delay: 30s, 15m, 2h.")
@click.option("--at", "at", help="Run at an ISO 8601 time (UTC unless it has an offset).")
@click.option("--unique", help="A key: if a live job has it, that job is returned instead of a new one.")
@click.option("--max-attempts", type=int, callback=_positive, help="Attempts before the job fails for good.")
@json_option
def enqueue(
    class_name: str,
    args: tuple[str, ...],
    kwargs_json: str | None,
    queue: str | None,
    priority: int | None,
    delay: float | None,
    at: str | None,
    unique: str | None,
    max_attempts: int | None,
    as_json: bool,
) -> None:
    """Put a job on a queue. ARGs are JSON values where they parse (42, true, "[1,2]"), else strings."""
    from qadmin.client import Client

    if not class_name.strip():
        raise UsageError("CLASS must not be empty: name the job's class or function")
    values = [_loose_json(a) for a in args]
    kwargs: dict[str, Any] = {}
    if kwargs_json is not None:
        try:
            kwargs = _strict_json(kwargs_json)
        except RecursionError:
            raise UsageError("--kwargs is not valid JSON: nested too deeply") from None
        except ValueError as exc:
            raise UsageError(f"--kwargs is not valid JSON: {str(exc).splitlines()[0]}") from None
        if not isinstance(kwargs, dict):
            raise UsageError("--kwargs must be a JSON object")
    run_at = None
    if at is not None:
        if delay is not None:
            raise UsageError("give --in or --at, not both")
        try:
            run_at = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--at {at!r} is not an ISO 8601 time") from None
        if run_at.tzinfo is None:
            run_at = run_at.replace(tzinfo=UTC)
        try:  # an offset can move a time at either end of the calendar out of it
            run_at = run_at.astimezone(UTC)
        except OverflowError:
            raise UsageError(f"--at {at!r} is out of range once in UTC") from None
    client = Client(_ops().backend)
    job = client.enqueue(
        class_name,
        *values,
        queue=queue,
        priority=priority,
        run_at=run_at,
        delay=delay,
        max_attempts=max_attempts,
        unique=unique,
        **kwargs,
    )
    if as_json:
        _print_json(job.to_dict())
    else:
        click.echo(
            f"enqueued job {visible(job.id)} ({visible(job.class_name)} on {visible(job.queue)}, {job.state.value})"
        )


def _loose_json(text: str) -> Any:
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise UsageError(f"argument {text[:12]!r}… is nested too deeply") from None
    except ValueError:  # not JSON (NaN and Infinity included): the argument is that string
        return text
    if holds_lone_surrogate(value):
        raise UsageError(f"argument {visible(text[:40])} is JSON for a lone surrogate, which is not text")
    return value


def _filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--error", callback=_not_empty, help="Only failed jobs with this error (the first line of last_error)."
    )(f)
    f = click.option(
        "--search", callback=_not_empty, help="Case-insensitive text in the payload or decoded arguments."
    )(f)
    f = click.option("--args", "args_json", help="Exact arguments as a JSON array.")(f)
    f = click.option("--class", "class_name", help=CLASS_HELP, shell_complete=_complete_classes)(f)
    f = click.option("--queue", "-q", multiple=True, help="Queue (repeatable).", shell_complete=_complete_queues)(f)
    return f


@main.command()
@click.option("--state", "-s", multiple=True, help="pending, scheduled, locked, stale, failed, finished (repeatable).")
@_filter_options
@click.option("--worker", callback=_not_empty, help="Only locks held by this worker (substring).")
@click.option("--limit", "-n", type=int, default=50, show_default=True, callback=_positive)
@click.option("--cursor", callback=_not_empty, help="Continue after the page that printed this cursor.")
@click.option(
    "--sort", type=click.Choice(["id", "-id", "priority", "run_at", "-failed_at"]), default="id", show_default=True
)
@json_option
def jobs(
    state: tuple[str, ...],
    queue: tuple[str, ...],
    class_name: str | None,
    args_json: str | None,
    search: str | None,
    error: str | None,
    worker: str | None,
    limit: int,
    cursor: str | None,
    sort: str,
    as_json: bool,
) -> None:
    """List jobs, one keyset page at a time."""
    selection = _selection((), state, queue, class_name, args_json, search, error, worker)
    page = _ops().list_jobs(selection, limit=limit, cursor=cursor, sort=sort)
    if as_json:
        _print_json([j.to_dict() for j in page.jobs])
        if page.next_cursor:
            click.echo(f"next page: --cursor '{visible(page.next_cursor)}'", err=True)
        return
    console = _console()
    if not page.jobs:
        console.print(f"No jobs match {_markup(selection.describe())}.")
        return
    _jobs_table(page.jobs, console)
    if page.next_cursor:
        console.print(f"[dim]more: qadmin jobs … --cursor '{_markup(page.next_cursor)}'[/]")


@main.command()
@click.argument("job_id", metavar="ID")
@json_option
def show(job_id: str, as_json: bool) -> None:
    """Everything about one job: payload, timestamps, lock, error and audit history."""
    ops = _ops()
    job = ops.show(job_id)
    history = ops.audit(limit=50, job_id=job.id)
    if as_json:
        out = job.to_dict()
        out["raw"] = job.raw
        if job.display is not None:
            out["decoded"] = job.display
        if job.meta:
            out["meta"] = job.meta
        out["audit"] = [a.to_dict() for a in history]
        _print_json(out)
        return
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    console = _console()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    data = job.to_dict()
    table.add_row("state", _state_text(job))
    for key in (
        "id",
        "queue",
        "class",
        "priority",
        "attempts",
        "run_at",
        "locked_at",
        "locked_by",
        "failed_at",
        "created_at",
        "finished_at",
        "format",
    ):
        if data.get(key) not in (None, ""):
            table.add_row(key, _short(str(data[key]), 500))
    if job.max_attempts:
        table.add_row("max_attempts", str(job.max_attempts))
    for key, value in (job.meta or {}).items():
        if key not in ("max_attempts",) and value not in (None, "", [], {}):
            table.add_row(key, _short(value, 100))
    console.print(Panel(table, title=f"job {_markup(job.id)}", expand=False))
    if job.undecodable:
        console.print(f"[red]undecodable:[/] {_markup(job.undecodable, lines=True)}")
    else:
        payload = {"args": job.args, "kwargs": job.kwargs} if job.display is None else job.display
        text = visible(json.dumps(payload, indent=2, ensure_ascii=False, default=str), lines=True)
        console.print(Panel(Syntax(text, "json", word_wrap=True), title="decoded payload", expand=False))
    if job.last_error:
        # an error on a job that is not failed is history: the job was retried since
        failed = job.state is JobState.FAILED
        console.print(
            Panel(
                Text(visible(job.last_error.rstrip(), lines=True)),
                title="last error" if failed else "error of the last attempt (retried since)",
                border_style="red" if failed else "dim",
                expand=False,
            )
        )
    raw = job.raw
    if len(raw) > RAW_SHOWN:
        # a multi-megabyte payload would flood the terminal; --json prints all of it
        raw = raw[:RAW_SHOWN] + f"\n… {len(job.raw) - RAW_SHOWN} more characters (qadmin show {job.id} --json)"
    console.print(Panel(Text(visible(raw, lines=True)), title="raw payload", border_style="dim", expand=False))
    if history:
        for entry in history:
            console.print(
                f"[dim]{entry.at:%Y-%m-%d %H:%M:%S}[/] {_markup(entry.verb)} "
                f"by {_markup(entry.actor)} via {_markup(entry.face)}"
            )


def _bulk(
    verb: str, ids: Sequence[str], selection_args: dict[str, Any], dry_run: bool, as_json: bool, confirm: bool = False
) -> None:
    ops = _ops()
    selection = _selection(ids, **selection_args)
    if selection.is_empty:
        raise UsageError(f"say which jobs to {verb}: give IDs or a filter (see qadmin {verb} --help)")
    preview = ops.preview(verb, selection)
    # jobs named by id of which none can be acted on are refused before anything is applied (or
    # audited): a dry run carries the reasons
    if dry_run or (selection.ids and preview.count == 0):
        _report_or_refuse(ops.apply(preview, dry_run=True), as_json, verb, selection)
        return
    if confirm and preview.count:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to {verb} {plural(preview.count, 'job')} without --yes (or preview with --dry-run)"
            )
        if not click.confirm(f"{verb.capitalize()} {plural(preview.count, 'job')}?", default=False, err=True):
            click.echo("nothing changed", err=True)
            sys.exit(1)
    update, done = _progress(not as_json and preview.count > 1000, verb)
    try:
        result = ops.apply(preview, update)
    finally:
        done()
    _report_or_refuse(result, as_json, verb, selection)


def _report_or_refuse(result: Any, as_json: bool, verb: str, selection: JobFilter, quiet: bool = False) -> None:
    """Report a bulk result; when the jobs named by id could none of them be acted on (unknown,
    or not in a state the verb acts on), that is bad input: one error line and exit 2."""
    acted = result.matched if result.dry_run else result.changed
    if selection.ids and acted == 0 and (result.skipped or result.matched == 0):
        first_id, reason = result.skipped[0] if result.skipped else (selection.ids[0], "it does not match")
        raise UsageError(f"cannot {verb} job {first_id}: {reason}")
    if not quiet:
        _report(result, as_json, verb)


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--failed", is_flag=True, help="All failed jobs (narrowed by the other options).")
@click.option("--queue", "-q", multiple=True, shell_complete=_complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=_complete_classes)
@click.option("--error", callback=_not_empty, help="Only jobs that failed with this error (an error group).")
@dry_run_option
@json_option
def retry(
    ids: tuple[str, ...],
    failed: bool,
    queue: tuple[str, ...],
    class_name: str | None,
    error: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Make failed jobs pending again (attempts reset; their own workers run them)."""
    state = ("failed",) if failed else ()
    _bulk("retry", ids, {"state": state, "queue": queue, "class_name": class_name, "error": error}, dry_run, as_json)


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--state", "-s", multiple=True)
@click.option("--queue", "-q", multiple=True, shell_complete=_complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=_complete_classes)
@click.option("--error", callback=_not_empty, help="Only failed jobs with this error.")
@click.option("--search", callback=_not_empty, help="Text in the payload.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@dry_run_option
@json_option
def delete(
    ids: tuple[str, ...],
    state: tuple[str, ...],
    queue: tuple[str, ...],
    class_name: str | None,
    error: str | None,
    search: str | None,
    yes: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete jobs (asks first unless --yes)."""
    if "finished" in [s.lower() for s in state]:
        raise UsageError("finished jobs are history: they are pruned after the retention window, not deleted")
    _bulk(
        "delete",
        ids,
        {"state": state, "queue": queue, "class_name": class_name, "error": error, "search": search},
        dry_run,
        as_json,
        confirm=not yes,
    )


@main.command()
@click.option("--queue", "-q", required=True, shell_complete=_complete_queues)
@click.option("--class", "class_name", required=True, help=CLASS_HELP, shell_complete=_complete_classes)
@click.option("--args", "args_json", help="Exact arguments as a JSON array (compared decoded).")
@click.option("--id", "job_ids", multiple=True, help="Only this job (repeatable).")
@dry_run_option
@json_option
def dequeue(
    queue: str, class_name: str, args_json: str | None, job_ids: tuple[str, ...], dry_run: bool, as_json: bool
) -> None:
    """Remove waiting jobs of a class (and exact args) from a queue, like Resque.dequeue."""
    ops = _ops()
    args = parse_args_json(args_json) if args_json is not None else None
    ids = [ops.backend.parse_id(i) for i in job_ids]
    selection = JobFilter(ids=tuple(ids))
    if ids and not dry_run:  # refuse ids none of which is waiting before acting
        _report_or_refuse(
            ops.dequeue(queue, class_name, args, job_ids=ids, dry_run=True), True, "dequeue", selection, quiet=True
        )
    update, done = _progress(not as_json, "dequeue")
    try:
        result = ops.dequeue(queue, class_name, args, job_ids=ids, dry_run=dry_run, progress=update)
    finally:
        done()
    _report_or_refuse(result, as_json, "dequeue", selection)


@main.command()
@click.argument("ids", nargs=-1)
@click.option("--stale", is_flag=True, help="Locks of dead workers or older than the max run time.")
@click.option("--older-than", callback=_duration, help="Locks older than this: 30m, 2h.")
@click.option("--worker", callback=_not_empty, help="Locks held by this worker (substring of the lock owner).")
@click.option("--queue", "-q", multiple=True, shell_complete=_complete_queues)
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
    ops = _ops()
    if not (ids or stale or older_than is not None or worker):
        raise UsageError("say which locks: IDs, --stale, --older-than or --worker")
    selection = _selection(ids, (), queue, worker=worker)
    preview = ops.unlock_preview(selection, stale=stale, older_than=older_than)
    # ids none of which is locked are refused before anything is applied (or audited)
    if dry_run or (selection.ids and preview.count == 0):
        _report_or_refuse(ops.apply(preview, dry_run=True), as_json, "unlock", selection)
        return
    alive = ops.alive_holders(preview)
    if alive and not yes:
        from qadmin.ops import alive_warning

        warning = alive_warning(alive, preview.count)
        if not sys.stdin.isatty():
            raise UsageError(f"not unlocking: {warning}; add --yes to unlock anyway (or preview with --dry-run)")
        click.echo(f"warning: {warning}", err=True)
        if not click.confirm(f"Unlock {plural(preview.count, 'job')} anyway?", default=False, err=True):
            click.echo("nothing changed", err=True)
            sys.exit(1)
    update, done = _progress(not as_json and preview.count > 1000, "unlock")
    try:
        result = ops.apply(preview, update)
    finally:
        done()
    _report_or_refuse(result, as_json, "unlock", selection)


@main.command()
@json_option
def stats(as_json: bool) -> None:
    """Jobs per queue and state, totals, oldest pending job, workers."""
    st = _ops().stats()
    now = datetime.now(UTC)
    if as_json:
        _print_json(
            {
                "queues": st.queues,
                "totals": st.totals(),
                "processed": st.processed,
                "failed": st.failed,
                "oldest_pending_at": st.oldest_pending_at.isoformat() if st.oldest_pending_at else None,
                "paused": st.paused,
                "workers": st.workers,
                "throughput": [{"minute": m.isoformat(), "processed": p, "failed": f} for m, p, f in st.throughput],
                **({"unreadable": st.unreadable} if st.unreadable else {}),
            }
        )
        return
    from rich.table import Table

    console = _console()
    columns = ("pending", "scheduled", "locked", "stale", "failed", "finished")
    table = Table(header_style="bold", title="jobs by queue and state")
    table.add_column("QUEUE")
    for c in columns:
        table.add_column(c.upper(), justify="right", style=STATE_STYLE[c])
    for name, counts in st.queues.items():
        label = _short(name, 200) if name else "(none)"
        if name in st.paused:
            label += " [yellow](paused)[/]"
        table.add_row(label, *[str(counts.get(c, 0)) for c in columns])
    totals = st.totals()
    table.add_section()
    table.add_row("[bold]total[/]", *[f"[bold]{totals.get(c, 0)}[/]" for c in columns])
    console.print(table)
    # Resque payloads carry no enqueue time: pending jobs whose age is unknown are not "none pending"
    oldest = (
        _ago(st.oldest_pending_at, now)
        if st.oldest_pending_at
        else "unknown"
        if st.totals().get("pending")
        else "none pending"
    )
    console.print(f"processed {st.processed}  failed {st.failed}  workers {st.workers}  oldest pending {oldest}")
    for why in st.unreadable.values():
        console.print(f"[red]unreadable:[/] {_short(why, 300)}")


@main.command()
@json_option
def queues(as_json: bool) -> None:
    """Queues with their counts and pause state."""
    infos = _ops().queues()
    if as_json:
        _print_json([q.to_dict() for q in infos])
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for c in ("QUEUE", "PENDING", "SCHEDULED", "LOCKED", "FAILED", "PAUSED"):
        table.add_column(c)
    for q in infos:
        table.add_row(
            _short(q.name, 200) if q.name else "(none)",
            str(q.counts.get("pending", 0)),
            str(q.counts.get("scheduled", 0)),
            str(q.counts.get("locked", 0)),
            str(q.counts.get("failed", 0)),
            "[yellow]paused[/]" if q.paused else "",
        )
        if q.unreadable:
            table.add_row("", f"[red]unreadable:[/] {_short(q.unreadable, 300)}")
    _console().print(table)


@main.command()
@json_option
def workers(as_json: bool) -> None:
    """Live workers (and lock holders of other systems), with their current job."""
    infos = _ops().workers()
    if as_json:
        _print_json([w.to_dict() for w in infos])
        return
    console = _console()
    if not infos:
        console.print("No workers.")
        return
    from rich.table import Table

    now = datetime.now(UTC)
    table = Table(header_style="bold")
    for c in ("WORKER", "QUEUES", "JOB", "SINCE", "HEARTBEAT", "PROCESSED", "FAILED", ""):
        table.add_column(c)
    for w in infos:
        table.add_row(
            _short(w.name, 200),
            _short(",".join(w.queues), 200),
            _short(str(w.current_job or ""), 200),
            _ago(w.job_started_at, now),
            _ago(w.heartbeat_at, now),
            str(w.processed),
            str(w.failed),
            "[bold magenta]stale[/]" if w.stale else "[green]alive[/]",
        )
    console.print(table)


@main.command()
@click.option("--queue", "-q", multiple=True, shell_complete=_complete_queues)
@click.option("--class", "class_name", help=CLASS_HELP, shell_complete=_complete_classes)
@click.option("--limit", "-n", type=int, default=50, callback=_positive)
@json_option
def errors(queue: tuple[str, ...], class_name: str | None, limit: int, as_json: bool) -> None:
    """Failed jobs grouped by exception and message, with counts."""
    groups = _ops().error_groups(
        JobFilter(states=frozenset({JobState.FAILED}), queues=queue, class_name=class_name), limit=limit
    )
    if as_json:
        _print_json([g.to_dict() for g in groups])
        return
    console = _console()
    if not groups:
        console.print("No failed jobs.")
        return
    from rich.table import Table

    table = Table(header_style="bold")
    # explicit widths that fit the console, texts cut with an ellipsis: left to itself, rich drops
    # whole no-wrap columns and crops the table's edge on a narrow terminal
    fixed = {"COUNT": max([len(str(g.count)) for g in groups] + [5]), "LAST FAILED": 11}
    spare = max(console.width - sum(fixed.values()) - 16, 24)
    widths = {"ERROR": spare * 50 // 100, "QUEUES": spare * 15 // 100}
    widths.update(fixed, CLASSES=spare - widths["ERROR"] - widths["QUEUES"])
    for c in ("COUNT", "ERROR", "QUEUES", "CLASSES", "LAST FAILED"):
        table.add_column(
            c, justify="right" if c == "COUNT" else "left", no_wrap=True, overflow="ellipsis", width=widths[c]
        )
    now = datetime.now(UTC)
    for g in groups:
        table.add_row(
            f"[bold red]{g.count}[/]",
            _short(g.error, 70),
            _short(",".join(g.queues), 60),
            _short(", ".join(g.classes), 40),
            _ago(g.last_failed_at, now),
        )
    console.print(table)
    console.print("[dim]retry a group: qadmin retry --error '<ERROR>'[/]")


@main.command()
@click.option("--limit", "-n", type=int, default=50, callback=_positive)
@click.option("--job", "job_id", help="Only entries that touched this job.")
@json_option
def audit(limit: int, job_id: str | None, as_json: bool) -> None:
    """Who did what, when, from which face."""
    entries = _ops().audit(limit=limit, job_id=job_id)
    if as_json:
        _print_json([e.to_dict() for e in entries])
        return
    console = _console()
    if not entries:
        console.print("No audit entries.")
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for c in ("WHEN", "WHO", "FACE", "VERB", "FILTER", "MATCHED", "CHANGED", "SKIPPED"):
        table.add_column(c)
    for e in entries:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            _short(e.actor, 60),
            _short(e.face, 20),
            _short(e.verb, 20),
            _short(" ".join(f"{k}={v}" for k, v in e.selection.items()), 40),
            str(e.matched),
            str(e.changed),
            str(e.skipped),
        )
    console.print(table)


@main.command()
@click.argument("queue", shell_complete=_complete_queues)
def pause(queue: str) -> None:
    """Pause a queue: qadmin workers skip it until it is resumed."""
    changed = _ops().pause(queue)
    click.echo(f"paused {visible(queue)}" if changed else f"{visible(queue)} was already paused")


@main.command()
@click.argument("queue", shell_complete=_complete_queues)
def resume(queue: str) -> None:
    """Resume a paused queue."""
    changed = _ops().resume(queue)
    click.echo(f"resumed {visible(queue)}" if changed else f"{visible(queue)} was not paused")


def _worker_imports(given: Sequence[str]) -> tuple[str, ...]:
    """The --import modules, then those of the config file's `[worker] imports`."""
    from qadmin.config import load_config

    config = load_config(_obj().config_file)
    listed = config.worker.get("imports", [])
    if not isinstance(listed, list) or not all(isinstance(m, str) and m for m in listed):
        raise ConfigError(f"{config.path}: [worker] imports must be a list of module names")
    return tuple(dict.fromkeys([*given, *listed]))


def _at_most(limit: float, shown: str, check: Callable[..., Any]) -> Callable[..., Any]:
    """A worker option's own check, then an upper bound the worker can actually honour."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        value = check(ctx, param, value)
        if value is not None and value > limit:
            raise click.BadParameter(f"must be at most {shown}")
        return value

    return callback


@main.command()
@click.option(
    "--queue",
    "-q",
    "queues_",
    multiple=True,
    help="Queue to serve (repeatable, in order: an earlier queue's jobs run first; * = all). Default *.",
)
@click.option("--burst", is_flag=True, help="Exit when no job is ready.")
@click.option("--count", type=int, callback=_positive, help="Exit after this many jobs (per process).")
@click.option(
    "--sleep",
    "sleep_",
    default="5",
    callback=_at_most(86400, "1d", _duration),
    help="Seconds between polls when idle (at most 1d).",
)
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=1,
    callback=_at_most(1024, "1024", _positive),
    help="Worker processes (at most 1024).",
)
@click.option("--max-attempts", type=int, default=25, callback=_positive, show_default=True)
@click.option(
    "--max-run-time",
    default="4h",
    callback=_at_most(366 * 86400, "366d", _positive_duration),
    show_default=True,
    help="A job running longer is interrupted and failed (at most 366d).",
)
@click.option("--max-jobs-per-child", type=int, callback=_positive, help="Recycle a process after N jobs.")
@click.option("--max-memory", type=float, callback=_positive, help="Recycle a process above this many MB resident.")
@click.option("--fork", is_flag=True, help="Run each job in a forked child (Resque's isolation).")
@click.option(
    "--prefetch",
    type=int,
    default=1,
    callback=_at_most(10_000, "10000", _positive),
    show_default=True,
    help="Jobs locked per claim (at most 10000): fewer round trips; unrun ones are released on stop.",
)
@click.option(
    "--defer-acks",
    is_flag=True,
    help="Redis: write successes with the next call (up to 100 jobs or 0.5 s) — faster, but a "
    "SIGKILL reruns the jobs whose success was not written yet.",
)
@click.option("--reload", is_flag=True, help="Restart the workers when source files change.")
@click.option(
    "--import",
    "imports",
    multiple=True,
    help="A module or package whose job classes and functions (and @job registrations) this worker runs "
    "(repeatable). Nothing else runs.",
)
@click.option("--pidfile", type=click.Path(dir_okay=False))
@click.option("-v", "--verbose", count=True, help="-v per job, -vv debug.")
def worker(
    queues_: tuple[str, ...],
    burst: bool,
    count: int | None,
    sleep_: float,
    concurrency: int,
    max_attempts: int,
    max_run_time: float,
    max_jobs_per_child: int | None,
    max_memory: float | None,
    fork: bool,
    prefetch: int,
    defer_acks: bool,
    reload: bool,
    imports: tuple[str, ...],
    pidfile: str | None,
    verbose: int,
) -> None:
    """Run jobs: claim, run, complete or retry with backoff."""
    from qadmin.backends import open_backend
    from qadmin.supervisor import Supervisor, default_watch_paths, import_modules, write_pidfile
    from qadmin.worker import EXIT_CANNOT_START, Worker, WorkerOptions, wait_for_backend

    level = logging.WARNING if verbose < 0 else (logging.INFO if verbose < 2 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(process)d %(levelname)s %(message)s", stream=sys.stderr)
    if verbose >= 1:
        logging.getLogger("qadmin.worker").setLevel(logging.DEBUG)
    sys.path.insert(0, os.getcwd())
    imports = _worker_imports(imports)
    # with --reload the children import the job modules themselves, after the fork, so that a
    # restart sees the new code; the supervisor only checks that they can be found
    import_modules(imports, find_only=reload)
    url, backend_options = _obj().settings()
    options = WorkerOptions(
        queues=list(queues_) or ["*"],
        max_attempts=max_attempts,
        max_run_time=max_run_time,
        sleep=sleep_,
        burst=burst,
        count=count,
        fork=fork,
        max_jobs=max_jobs_per_child,
        max_memory_mb=max_memory,
        prefetch=prefetch,
        defer_acks=defer_acks,
        imports=imports,
    )
    # fail fast on a bad URL or a missing table before forking anything; a server that is not up
    # yet is waited for (a host often boots before its database), except by a one-off --burst run
    probe = open_backend(url, backend_options)
    try:
        if defer_acks and not hasattr(probe, "defer_successes"):
            raise UsageError(
                f"--defer-acks is not available on {probe.kind}: every success is one transaction there already"
            )
        if burst:
            probe.check()
        elif not wait_for_backend(probe):
            sys.exit(0)
    finally:
        probe.close()
    try:
        remove_pidfile = write_pidfile(pidfile) if pidfile else (lambda: None)
    except OSError as exc:
        raise UsageError(f"cannot write --pidfile {pidfile}: {exc.strerror or exc}") from None

    def run_one(_slot: int = 0) -> int:
        if reload:
            import_modules(imports)
        backend = open_backend(url, backend_options)
        w = Worker(backend, options)
        w.install_signal_handlers()
        try:
            return w.work()
        finally:
            backend.close()

    def run_child(slot: int) -> int:
        try:
            return run_one(slot)
        except QadminError as exc:  # one line, and a status that tells the supervisor not to retry
            logging.getLogger("qadmin.worker").error("cannot work: %s", exc)
            return EXIT_CANNOT_START

    try:
        if concurrency == 1 and not (max_jobs_per_child or max_memory or reload):
            code = run_one()
        else:
            code = Supervisor(
                run_child, concurrency, burst=burst, reload=reload, watch=default_watch_paths() if reload else ()
            ).run()
    finally:
        remove_pidfile()
    sys.exit(0 if code in (0, 3) else code)


@main.command()
@click.option("--seed", type=int, default=7, show_default=True)
@json_option
def demo(seed: int, as_json: bool) -> None:
    """Fill the queue at --url with sample jobs in every state."""
    from qadmin.demo import fill

    counts = fill(_ops().backend, seed=seed)
    if as_json:
        _print_json(counts)
        return
    click.echo("demo jobs: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    click.echo("now try: qadmin stats · qadmin jobs --state failed · qadmin tui")


@main.command()
@click.option("--read-only", is_flag=True, help="Hide and refuse every action.")
@click.option("--refresh", default="2s", callback=_positive_duration, help="Refresh interval.")
def tui(read_only: bool, refresh: float) -> None:
    """The terminal console."""
    try:
        from qadmin.tui.app import run as run_tui
    except ImportError as exc:
        raise ConfigError(f"the terminal console is not available: {exc}") from None
    state = _obj()
    run_tui(state, read_only=read_only, refresh=refresh)


@main.command()
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
        _obj(),
        host=host,
        port=port,
        read_only=read_only,
        server_name=server_name,
        allowed_hosts=allowed_hosts,
    )


if __name__ == "__main__":
    main()
