"""What the commands' options share: validating callbacks, JSON arguments, shell completion
from the backend, the job filter options and the `JobFilter` they make."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from qadmin.cli.context import GLOBAL_OPTIONS, current_ops
from qadmin.config import parse_duration
from qadmin.errors import ConfigError, UsageError
from qadmin.filters import JobFilter, fold, parse_args_json, parse_fingerprint, parse_states
from qadmin.ops import Ops, open_ops
from qadmin.settings import resolve

#: a number an option takes
Number = TypeVar("Number", int, float)
#: a click option's callback
Callback = Callable[[click.Context, click.Parameter, Any], Any]


def build_selection(
    ids: Sequence[str],
    state: Sequence[str] = (),
    queue: Sequence[str] = (),
    class_name: str | None = None,
    args: str | None = None,
    search: str | None = None,
    error: str | None = None,
    worker: str | None = None,
    fingerprint: str | None = None,
) -> JobFilter:
    ops = current_ops()
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
        fingerprint=fingerprint,
    )


#: the largest count an option takes (delayed_job's integer columns are 32-bit)
MAX_COUNT = 2**31 - 1


def positive(ctx: click.Context, param: click.Parameter, value: Number | None) -> Number | None:
    if value is not None and not value >= 1:  # `not >=` also refuses NaN
        raise click.BadParameter("must be at least 1")
    if value is not None and value > MAX_COUNT:
        raise click.BadParameter(f"must be at most {MAX_COUNT}")
    return value


def not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An empty text would be dropped (--search, --cursor) or select everything (--worker '' is in
    every lock owner's name): refused instead."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
    return value


def non_negative(ctx: click.Context, param: click.Parameter, value: Number | None) -> Number | None:
    if value is not None and value < 0:
        raise click.BadParameter("must not be negative")
    return value


def duration(ctx: click.Context, param: click.Parameter, value: str | float | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def positive_duration(ctx: click.Context, param: click.Parameter, value: str | float | None) -> float | None:
    """A duration where 0 cannot work: a max run time of 0 expires every lock at once, a refresh
    every 0 s never rests."""
    seconds = duration(ctx, param, value)
    if seconds is not None and seconds <= 0:
        raise click.BadParameter("must be more than 0")
    return seconds


#: how many jobs, newest first, class names are completed from (a sample: completion must be quick)
COMPLETION_SAMPLE = 1000
CLASS_HELP = "Job class: its full name, or a prefix of it or of its last part, in any case (SendEmail, sendem)."


def _completion_ops(ctx: click.Context) -> Ops:
    """Ops for the backend the command line names so far. While completing, click parses without
    running the group's callback, so the options are read from the parsed contexts (before and
    after the subcommand's name); `resolve` adds the environment."""
    values: dict[str, str | None] = {}
    for level in reversed([c for c in (ctx.parent, ctx) if c is not None]):
        for _flag, name, _extra, _text in GLOBAL_OPTIONS:
            if level.params.get(name) is not None:
                values.setdefault(name, level.params[name])
    settings = resolve(
        url=values.get("url"),
        backend=values.get("backend_name"),
        config_file=values.get("config_file"),
        table=values.get("table"),
        namespace=values.get("namespace"),
    )
    return open_ops(settings, face="cli")


def _completions(ctx: click.Context, incomplete: str, names: Callable[[Ops], Sequence[str]]) -> list[str]:
    try:
        ops = _completion_ops(ctx)
        try:
            found = names(ops)
        finally:
            ops.close()
    except Exception:  # noqa: BLE001 - a completion that cannot reach the backend offers nothing
        return []
    return sorted(n for n in set(found) if n and fold(n).startswith(fold(incomplete)))


def complete_queues(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return _completions(ctx, incomplete, lambda ops: ops.queue_names())


def complete_classes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Full class names and their last parts (both select the class), from the newest jobs and
    the most recently failed ones."""
    return _completions(ctx, incomplete, lambda ops: ops.class_names(COMPLETION_SAMPLE, short=True))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would change, change nothing.")


def at_most(limit: float, shown: str, check: Callback) -> Callback:
    """An option's own check, then an upper bound (one the worker can actually honour)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        value = check(ctx, param, value)
        if value is not None and value > limit:
            raise click.BadParameter(f"must be at most {shown}")
        return value

    return callback


def _fingerprint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return parse_fingerprint(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


fingerprint_option = click.option(
    "--fingerprint",
    callback=_fingerprint,
    help="Only the failed jobs of this error group (its FINGERPRINT in `qadmin errors`).",
)


def filter_options(f: Callable[..., None]) -> Callable[..., None]:
    f = fingerprint_option(f)
    f = click.option(
        "--error", callback=not_empty, help="Only failed jobs with this error (the first line of last_error)."
    )(f)
    f = click.option("--search", callback=not_empty, help="Case-insensitive text in the payload or decoded arguments.")(
        f
    )
    f = click.option("--args", "args_json", help="Exact arguments as a JSON array.")(f)
    f = click.option("--class", "class_name", help=CLASS_HELP, shell_complete=complete_classes)(f)
    f = click.option("--queue", "-q", multiple=True, help="Queue (repeatable).", shell_complete=complete_queues)(f)
    return f
