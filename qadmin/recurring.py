"""Recurring schedules: what a schedule is, when it ticks, and how one is written down.

A schedule enqueues one job of its class per *tick*. Ticks are fixed points in time that every
scheduler process computes alike — a cron expression's matches in the schedule's time zone, or
for `every`, the multiples of the interval since the Unix epoch — so that the backends can keep
"exactly once per tick" with a compare-and-set on the last tick fired (`Backend.fire_schedule`),
whatever the number of scheduler processes and hosts.

Cron expressions are parsed and walked by croniter (maintained, DST-aware), not by code of ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from qadmin.errors import UsageError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

#: where a schedule was declared, as the faces name it
SOURCE_CONFIG = "qadmin.toml"
SOURCE_API = "api"
SOURCE_RESQUE = "resque-scheduler"

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_EVERY_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}
#: rufus-scheduler's compound durations ("1h30m"), which resque-scheduler's `every` accepts
_EVERY_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_NAME = re.compile(r"^[A-Za-z0-9_.:@/-]{1,200}$")


def parse_every(text: str | float | int) -> float:
    """Seconds of an interval: a number of seconds, or `"30s"`, `"5m"`, `"1h30m"`, `"2d"`."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    elif isinstance(text, str):
        whole = _EVERY.match(text)
        if whole:
            seconds = float(whole.group(1)) * _EVERY_UNITS[whole.group(2)]
        else:
            compact = text.replace(" ", "")
            parts = _EVERY_PART.findall(compact)
            if not parts or "".join(n + u for n, u in parts) != compact:
                raise UsageError(f"every = {text!r}: write an interval such as '30s', '5m', '1h30m' or '2d'")
            seconds = sum(float(n) * _EVERY_UNITS[u] for n, u in parts)
    else:
        raise UsageError(f"every = {text!r}: write an interval such as '30s', '5m', '1h30m' or '2d'")
    if seconds < 1:
        raise UsageError(f"every = {text!r}: a schedule ticks at most once a second")
    return seconds


def format_every(seconds: float) -> str:
    """The shortest of `parse_every`'s forms for `seconds` ("90s" stays "90s", 3600 is "1h")."""
    for unit in ("w", "d", "h", "m"):
        size = _EVERY_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # its time zone database path: read when a zone is

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Paris'") from exc


def cron_is_valid(text: str) -> bool:
    from croniter import croniter  # imported by what reads a cron: a job listing has none to read

    return bool(croniter.is_valid(text))


def split_cron_zone(text: str) -> tuple[str, str | None]:
    """resque-scheduler (rufus) writes a cron's zone as its last word ("0 5 * * * Europe/Paris"):
    the expression and the zone, if any."""
    words = text.split()
    if len(words) > 5 and not cron_is_valid(text):
        try:
            zone(words[-1])
        except UsageError:
            return text, None
        return " ".join(words[:-1]), words[-1]
    return text, None


@dataclass(frozen=True)
class Schedule:
    """One recurring job: enqueue `job_class(*args, **kwargs)` on `queue` at every tick of `cron`
    (in `timezone`) or `every` seconds. Exactly one of `cron` and `every` is set."""

    name: str
    job_class: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: None: the class's own queue (a registered job's, else "default")
    queue: str | None = None
    priority: int | None = None
    cron: str | None = None
    #: seconds between ticks
    every: float | None = None
    timezone: str = "UTC"
    description: str = ""
    enabled: bool = True
    source: str = SOURCE_API

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise UsageError(
                f"schedule name {self.name!r}: 1 to 200 letters, digits or _ . : @ / - (it is a key and a URL part)"
            )
        if not self.job_class.strip():
            raise UsageError(f"schedule {self.name!r}: name the job's class")
        if (self.cron is None) == (self.every is None):
            raise UsageError(f"schedule {self.name!r}: give exactly one of cron = '...' or every = '...'")
        if self.cron is not None and not cron_is_valid(self.cron):
            raise UsageError(f"schedule {self.name!r}: {self.cron!r} is not a cron expression")
        if self.every is not None and self.every < 1:
            raise UsageError(f"schedule {self.name!r}: a schedule ticks at most once a second")
        zone(self.timezone)
        if not isinstance(self.args, list):
            raise UsageError(f"schedule {self.name!r}: args must be a list")
        if not isinstance(self.kwargs, dict):
            raise UsageError(f"schedule {self.name!r}: kwargs must be a table")

    @property
    def timing(self) -> str:
        """How the faces show when it runs: "*/5 * * * * (Europe/Paris)" or "every 30s"."""
        if self.cron is not None:
            return self.cron if self.timezone == "UTC" else f"{self.cron} ({self.timezone})"
        assert self.every is not None
        return f"every {format_every(self.every)}"

    def previous_tick(self, now: datetime) -> datetime:
        """The latest tick at or before `now` (UTC)."""
        if self.every is not None:
            epoch = now.timestamp()
            return datetime.fromtimestamp(epoch - (epoch % self.every), UTC)
        assert self.cron is not None
        from croniter import croniter

        local = now.astimezone(zone(self.timezone))
        # croniter's get_prev is strictly before its start: start a hair later so a tick at `now` counts
        tick: datetime = croniter(self.cron, local + timedelta(microseconds=1)).get_prev(datetime)
        return tick.astimezone(UTC)

    def next_tick(self, now: datetime) -> datetime:
        """The first tick strictly after `now` (UTC)."""
        if self.every is not None:
            epoch = now.timestamp()
            return datetime.fromtimestamp(epoch - (epoch % self.every) + self.every, UTC)
        assert self.cron is not None
        from croniter import croniter

        tick: datetime = croniter(self.cron, now.astimezone(zone(self.timezone))).get_next(datetime)
        return tick.astimezone(UTC)

    def definition(self) -> dict[str, Any]:
        """What it enqueues and when, as JSON values (the SQL backend stores this; faces add the rest)."""
        return {
            "class": self.job_class,
            "args": self.args,
            "kwargs": self.kwargs,
            "queue": self.queue,
            "priority": self.priority,
            "cron": self.cron,
            "every": self.every,
            "timezone": self.timezone,
            "description": self.description,
        }

    def with_enabled(self, enabled: bool) -> Schedule:
        return replace(self, enabled=enabled)


@dataclass(frozen=True)
class RecurringEntry:
    """A stored schedule and what the backend remembers of its runs."""

    schedule: Schedule
    #: when its last job was enqueued (by a tick or "run now")
    last_run_at: datetime | None = None
    #: the last tick fired (a run now fires none)
    last_tick: datetime | None = None
    #: the id of the last job it enqueued, where the backend keeps it
    last_job_id: str | None = None

    def next_run(self, now: datetime) -> datetime | None:
        """When it will next enqueue (None while disabled)."""
        return self.schedule.next_tick(now) if self.schedule.enabled else None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        """The JSON form every face and the API give (`qadmin recurring --json`)."""
        s = self.schedule
        nxt = self.next_run(now)
        return {
            "name": s.name,
            **s.definition(),
            "enabled": s.enabled,
            "source": s.source,
            "timing": s.timing,
            "next_run_at": nxt.isoformat() if nxt else None,
            "last_run_at": self.last_run_at.isoformat() if self.last_run_at else None,
            "last_job_id": self.last_job_id,
        }


def schedule_from_table(name: str, table: dict[str, Any], source: str = SOURCE_CONFIG) -> Schedule:
    """A `[recurring.NAME]` table of qadmin.toml (or the same keys from the JSON API) as a
    Schedule; a UsageError names the schedule and the key that is wrong."""
    known = {"class", "args", "kwargs", "queue", "priority", "cron", "every", "timezone", "description", "enabled"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(f"[recurring.{name}]: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    job_class = table.get("class")
    if not isinstance(job_class, str):
        raise UsageError(f"[recurring.{name}]: class = '...' is required (the job's class or function)")
    queue = table.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        raise UsageError(f"[recurring.{name}]: queue must be a non-empty string")
    priority = table.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise UsageError(f"[recurring.{name}]: priority must be an integer")
    cron = table.get("cron")
    if cron is not None and not isinstance(cron, str):
        raise UsageError(f"[recurring.{name}]: cron must be a string such as '*/5 * * * *'")
    every = table.get("every")
    timezone = table.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise UsageError(f"[recurring.{name}]: timezone must be a string such as 'Europe/Paris'")
    if every is not None and "timezone" in table:
        raise UsageError(f"[recurring.{name}]: timezone applies to cron only (every = ... ticks in seconds)")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise UsageError(f"[recurring.{name}]: enabled must be true or false")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise UsageError(f"[recurring.{name}]: description must be a string")
    return Schedule(
        name=name,
        job_class=job_class,
        args=table.get("args", []),
        kwargs=table.get("kwargs", {}),
        queue=queue,
        priority=priority,
        cron=cron,
        every=None if every is None else parse_every(every),
        timezone=timezone,
        description=description,
        enabled=enabled,
        source=source,
    )
