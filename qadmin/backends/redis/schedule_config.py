"""resque-scheduler's persisted schedule configs and run times, as Ruby writes and reads them
(docs/compatibility.md §2.4): a `Schedule` as the JSON `Resque.set_schedule` stores in
`persistent_schedules`, that JSON (whoever wrote it) read back as a `Schedule`, and the
`Time#to_s` text of `delayed:last_enqueued_at`.

What resque-scheduler does with a config, and so what these functions keep to, is in
lib/resque/scheduler.rb: `load_schedule_job` hands `cron` (if non-empty, it wins) or else `every`
to rufus-scheduler — a string as it is, an array `[duration, {options}]` by its first element
(`optionizate_interval_value`) — and `enqueue_from_config` pushes `Resque::Job.create(queue,
class, *params)`, where `params` is `[args]` for a hash, else `Array(args)`, and `queue` is the
config's or the Ruby class's own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from qadmin import registry
from qadmin.codecs import json_codec
from qadmin.errors import UsageError
from qadmin.recurring import SOURCE_RESQUE, Schedule, format_every, parse_every, split_cron_zone

#: cron macros croniter and fugit (rufus-scheduler's parser) read alike
_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
#: config keys that make Ruby's scheduler enqueue, or not, by rules qadmin cannot follow
_RUBY_ONLY = ("custom_job_class", "rails_env", "env")
#: Time#to_s: local time with its numeric offset ("2026-12-07 16:38:28 +0000"), or "UTC" for a UTC Time
_TIME_TO_S = "%Y-%m-%d %H:%M:%S %z"


class UnreadableConfig(ValueError):
    """A persisted config qadmin cannot read as a schedule (it is left out of the listing)."""


def refuse_unportable(schedule: Schedule) -> None:
    """What Ruby's scheduler would run differently than qadmin's, refused before anything is written.

    Ruby enqueues `{"class","args"}` (`Resque::Job.create`): keyword arguments, which qadmin's
    payload carries in `kwargs`, would be dropped, and Resque's queues have no priorities."""
    where = f"schedule {schedule.name!r} on Redis"
    if schedule.kwargs:
        raise UsageError(
            f"{where}: resque-scheduler, which runs it too, enqueues a class and its args only and would "
            "drop its kwargs; give their values as args instead"
        )
    if schedule.priority:
        raise UsageError(f"{where}: Redis (Resque) queues have no priorities; leave the priority out")
    if schedule.cron is not None and not _portable(schedule.cron):
        raise UsageError(
            f"{where}: cron {schedule.cron!r}: resque-scheduler (fugit) reads five fields, six with seconds, "
            "or a macro such as @hourly; not a year field"
        )


def _portable(cron: str) -> bool:
    return cron.strip() in _MACROS or len(cron.split()) in (5, 6)


def rufus_cron(cron: str) -> str:
    """A cron as fugit reads it: the seconds of a six-field cron first (croniter reads them last)."""
    fields = cron.split()
    return " ".join(fields[-1:] + fields[:-1]) if len(fields) == 6 else cron


def croniter_cron(cron: str) -> str:
    """A cron as fugit wrote it, as croniter reads it: the seconds of six fields moved last."""
    fields = cron.split()
    return " ".join(fields[1:] + fields[:1]) if len(fields) == 6 else cron


def implicit_queue(job_class: str) -> str:
    """The queue qadmin's own enqueue picks for a job given none (`Client.build`: a registered
    job's queue, else "default"). It is written into the config, so that Ruby's scheduler pushes to
    the same queue instead of asking the Ruby class (which a Python job has not) for its own."""
    queue = registry.defaults_of(job_class).get("queue")
    return queue if isinstance(queue, str) and queue else "default"


def config_text(schedule: Schedule, queue: str) -> bytes:
    """The JSON `Resque.set_schedule(name, config)` stores for this schedule (`Resque.encode`:
    compact, raw UTF-8, keys in the order given). A cron's zone is its last word as rufus reads
    it; a UTC cron is written without one. A six-field cron has its seconds first, as fugit reads it."""
    config: dict[str, Any] = {"class": schedule.job_class, "args": list(schedule.args), "queue": queue}
    if schedule.cron is not None:
        zone = "" if schedule.timezone == "UTC" else f" {schedule.timezone}"
        config["cron"] = rufus_cron(schedule.cron) + zone
    else:
        assert schedule.every is not None
        config["every"] = format_every(schedule.every)
    if schedule.description:
        config["description"] = schedule.description
    return json_codec.dumps(config).encode("utf-8")


def read_config(
    name: str, raw: bytes, *, enabled: bool, source: str = SOURCE_RESQUE, queue_given: bool = True
) -> Schedule:
    """A persisted config as the schedule Ruby's scheduler runs. A cron without a zone ticks in
    UTC for qadmin (rufus would use the Ruby host's local time: run Ruby's scheduler with TZ=UTC,
    or give the zone). `queue_given=False` shows a queue qadmin filled in (`implicit_queue`) as
    none. UnreadableConfig says why a config is not a schedule qadmin can run as Ruby would."""
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UnreadableConfig(f"not JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise UnreadableConfig(f"a JSON {type(config).__name__}, not an object")
    for key in _RUBY_ONLY:
        if config.get(key) not in (None, "", "Resque::Job"):
            raise UnreadableConfig(f"{key} = {config[key]!r}: only Ruby's scheduler knows what that enqueues")
    job_class = config.get("class") or name  # `prepare_schedules`: the name is the class when none is given
    if not isinstance(job_class, str):
        raise UnreadableConfig(f"class = {job_class!r} is not a class name")
    queue = config.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise UnreadableConfig(f"queue = {queue!r} is not a queue name")
    description = config.get("description")
    try:
        cron, every, timezone = _timing(config)
        return Schedule(
            name=name,
            job_class=job_class,
            args=_params(config.get("args")),
            queue=queue if queue_given else None,
            cron=cron,
            every=every,
            timezone=timezone,
            description=description if isinstance(description, str) else "",
            enabled=enabled,
            source=source,
        )
    except UsageError as exc:
        raise UnreadableConfig(str(exc)) from exc


def _params(args: Any) -> list[Any]:
    """`enqueue_from_config`: `args.is_a?(Hash) ? [args] : Array(args)`."""
    if args is None:
        return []
    if isinstance(args, list):
        return args
    return [args]


def _timing(config: dict[str, Any]) -> tuple[str | None, float | None, str]:
    """(cron, every seconds, zone) as `load_schedule_job` picks them: a non-empty `cron` first."""
    cron = config.get("cron")
    if isinstance(cron, str) and cron:
        expression, zone = split_cron_zone(cron)
        if not _portable(expression):
            raise UnreadableConfig(f"cron {cron!r}: not five fields, six with seconds, or a macro")
        return croniter_cron(expression), None, zone or "UTC"
    if cron not in (None, ""):
        raise UnreadableConfig(f"cron = {cron!r} is not a cron line")
    every = config.get("every")
    if isinstance(every, list) and every:
        every = every[0]  # `optionizate_interval_value`: [duration, {first_in: ...}] ticks every duration
    if isinstance(every, str) and every:
        return None, parse_every(every), "UTC"
    raise UnreadableConfig("no cron or every (resque-scheduler skips it too)")


def time_to_s(at: datetime) -> str:
    """Ruby's `Time.now.to_s` on a UTC host, as resque-scheduler records a run: "2026-12-07 16:38:28 +0000"."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


def parse_time_to_s(text: bytes | str) -> datetime | None:
    """A `Time#to_s` of any offset (or "UTC") as a UTC time; None for text that is not one."""
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if value.endswith(" UTC"):
        value = value[:-4] + " +0000"
    try:
        return datetime.strptime(value, _TIME_TO_S).astimezone(UTC)
    except ValueError:
        return None
