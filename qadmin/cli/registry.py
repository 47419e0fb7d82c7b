"""Every `qadmin` command by name, with the module that defines it and the line `qadmin --help`
prints for it: a command's module (and what it imports: rich, textual, flask, the worker) is
imported only when that command runs, so `qadmin jobs` pays for a listing and nothing else.

`tests/faces/cli/test_cli_registry.py` holds each entry to its module: the name, the command
object and the help line must be the ones the module defines."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

import click

from qadmin.cli.loading import loading


@dataclass(frozen=True)
class Entry:
    #: the module under `qadmin.cli` that defines the command
    module: str
    #: the command object's name in that module
    attribute: str
    #: the command's help up to its first sentence's end (what click shortens for `--help`)
    summary: str


#: in the order they were added to the group (`qadmin --help` sorts them by name)
COMMANDS: dict[str, Entry] = {
    "init": Entry("serve", "init", "Create qadmin's tables if missing (SQL)."),
    "enqueue": Entry("jobs", "enqueue", "Put a job on a queue."),
    "jobs": Entry("jobs", "jobs", "List jobs, one keyset page at a time."),
    "show": Entry("jobs", "show", "Everything about one job: payload, timestamps, lock, error and audit history."),
    "retry": Entry("bulk", "retry", "Make failed jobs pending again (attempts reset; their own workers run them)."),
    "delete": Entry("bulk", "delete", "Delete jobs (asks first unless --yes)."),
    "dequeue": Entry(
        "bulk", "dequeue", "Remove waiting jobs of a class (and exact args) from a queue, like Resque.dequeue."
    ),
    "unlock": Entry("bulk", "unlock", "Free jobs held by workers that died, so that they run again."),
    "run-now": Entry(
        "lifecycle",
        "run_now",
        "Run scheduled jobs now: a later job, or a retry waiting for its backoff, becomes pending "
        "(attempts and last error kept).",
    ),
    "kill": Entry(
        "lifecycle",
        "kill",
        "Fail jobs waiting for a retry now, with no more attempts (attempts and error kept; retry brings them back).",
    ),
    "edit": Entry("edit", "edit", "Edit a pending, scheduled or failed job."),
    "cancel": Entry(
        "cancel",
        "cancel",
        "Cancel jobs: a pending or scheduled job is removed and never runs; one waiting for its external "
        "service is taken out of waiting (its service's report is then refused); a job a qadmin worker runs "
        "is interrupted by that worker within seconds (its heartbeat sees the request).",
    ),
    "complete": Entry(
        "waiting", "complete", "The external service a waiting job waits for has succeeded: the job is finished."
    ),
    "fail": Entry(
        "waiting",
        "fail",
        "The external service a waiting job waits for has failed: the job fails as a worker's would "
        "(retried after delayed_job's backoff, or failed at its last attempt).",
    ),
    "stats": Entry("queues", "stats", "Jobs per queue and state, totals, oldest pending job, workers."),
    "queues": Entry("queues", "queues", "Queues with their counts and pause state."),
    "workers": Entry("queues", "workers", "Live workers (and lock holders of other systems), with their current job."),
    "errors": Entry(
        "errors",
        "errors",
        "Failed jobs grouped by error fingerprint (exception class + message with ids, numbers, quoted "
        "values, e-mails, paths, URLs replaced), with counts; `errors show FINGERPRINT` lists a group's "
        "exact messages.",
    ),
    "audit": Entry("queues", "audit", "Who did what, when, from which face."),
    "pause": Entry("queues", "pause", "Pause a queue: qadmin workers skip it until it is resumed."),
    "resume": Entry("queues", "resume", "Resume a paused queue."),
    "prune": Entry(
        "prune",
        "prune",
        "Remove failed jobs, finished records and dead qadmin workers older than their retention "
        "(qadmin.toml's [retention]: failed 30d, finished 7d, workers 1d by default).",
    ),
    "recurring": Entry(
        "recurring",
        "recurring",
        "List recurring schedules with their next and last run, or act on one (add, remove, enable, disable, run-now).",
    ),
    "scheduler": Entry(
        "recurring",
        "scheduler",
        "Enqueue recurring schedules' jobs, exactly once per tick however many schedulers run "
        "(on any number of hosts).",
    ),
    "alerts": Entry(
        "alerts",
        "alerts",
        "Show the alert rules of qadmin.toml ([alerts.NAME]) evaluated now, and the open incidents "
        "(since when, and why).",
    ),
    "worker": Entry("worker", "worker", "Run jobs: claim, run, complete or retry with backoff."),
    "demo": Entry("serve", "demo", "Fill the queue at --url with sample jobs in every state."),
    "tui": Entry("serve", "tui", "The terminal console."),
    "web": Entry("serve", "web", "The web dashboard (served by waitress, or granian)."),
    "metrics": Entry(
        "insight",
        "metrics",
        "Each job class over a window: runs, failures, failure rate, p50/p95/p99 runtime and the trend "
        "against the window before (from the history the workers record).",
    ),
    "history": Entry(
        "insight",
        "history",
        "Processed, failed and retried runs per minute (1h, 24h) or hour (7d, 30d), their p50/p95 runtime "
        "and the queue latency (the longest wait for a worker), from what workers record.",
    ),
    "users": Entry(
        "users",
        "users",
        "The web dashboard's users ([users.NAME] in qadmin.toml) with their roles and last actions, or make "
        "the hash of a password or a new API token to paste there.",
    ),
}


def load(entry: Entry) -> click.Command:
    """The command object `entry` names, its module imported now."""
    with loading():
        command = getattr(importlib.import_module(f"qadmin.cli.{entry.module}"), entry.attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"qadmin.cli.{entry.module}.{entry.attribute} is not a click command")
    return command


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's `commands`: every name is known at once, a command is imported when it is
    looked up. Iterating gives names only, so listing them (`--help`, click's "did you mean")
    imports nothing."""

    def __init__(self, entries: dict[str, Entry]) -> None:
        self.entries = dict(entries)
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded:
            self.loaded[name] = load(self.entries[name])
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.loaded.pop(name, None)
        self.entries.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self.entries
        yield from (name for name in self.loaded if name not in self.entries)

    def __len__(self) -> int:
        return len(self.entries.keys() | self.loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.entries or name in self.loaded

    def short_help(self, name: str, limit: int) -> str:
        """The help line of `name` cut to `limit` as click cuts it, without importing the command."""
        if name in self.loaded:
            return self.loaded[name].get_short_help_str(limit)
        return click.Command(name, help=self.entries[name].summary).get_short_help_str(limit)
