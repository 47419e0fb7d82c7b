"""The read-side types every face shows: a page of jobs, error groups, statistics.

They belong to the model, not to a backend: the faces get them from the operations layer and
never import `qadmin.backends` (an import-linter contract in pyproject.toml)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from qadmin.errors import InvalidTransition, UsageError
from qadmin.fingerprints import exception_of
from qadmin.job import AuditEntry, Job, JobId, JobState, iso

#: how listings may be ordered; each is a keyset order ending in the id
SORTS = ("id", "-id", "priority", "run_at", "-failed_at")


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    #: opaque keyset cursor for the next page, None on the last page
    next_cursor: str | None = None


@dataclass(frozen=True)
class ErrorVariant:
    """One exact first line of last_error inside an error group, and its failed jobs."""

    error: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.error, "count": self.count}


@dataclass(frozen=True)
class ErrorGroup:
    """Failed jobs sharing an error fingerprint: exception class plus normalised message
    (`qadmin.fingerprints`). `error` is the group's sample message: its most frequent exact
    first line, whose job is `sample_id`; `variants` are the exact first lines, most frequent
    first, capped (`variants_left_out` says how many more there are)."""

    error: str
    count: int
    queues: list[str]
    classes: list[str]
    last_failed_at: datetime | None
    sample_id: JobId | None = None
    fingerprint: str = ""
    pattern: str = ""
    first_failed_at: datetime | None = None
    variants: list[ErrorVariant] = field(default_factory=list)
    variants_left_out: int = 0

    @property
    def exception(self) -> str:
        return exception_of(self.error)

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "exception": self.exception,
            "count": self.count,
            "queues": self.queues,
            "classes": self.classes,
            "last_failed_at": iso(self.last_failed_at),
            "sample_id": self.sample_id,
            "fingerprint": self.fingerprint,
            "pattern": self.pattern,
            "first_failed_at": iso(self.first_failed_at),
            "variants": [v.to_dict() for v in self.variants],
            "variants_left_out": self.variants_left_out,
        }


@dataclass(frozen=True)
class Stats:
    #: queue -> state -> count ("stale" is counted inside "locked" and on its own)
    queues: dict[str, dict[str, int]]
    processed: int
    failed: int
    oldest_pending_at: datetime | None
    paused: list[str]
    workers: int
    #: (minute start, processed, failed), oldest first, for the last hour
    throughput: list[tuple[datetime, int, int]] = field(default_factory=list)
    #: stored structures that cannot be read (a Redis key of the wrong type, a counter that is no
    #: number): name -> why. A queue or list of the wrong type counts (and lists) as one
    #: undecodable entry naming it
    unreadable: dict[str, str] = field(default_factory=dict)
    #: jobs of dead qadmin workers given back by live workers (`WorkerSession.rescue`), ever
    rescued: int = 0

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for counts in self.queues.values():
            for state, n in counts.items():
                out[state] = out.get(state, 0) + n
        return out


class Outcome(enum.StrEnum):
    """How one run of a job ended (`Attempt.outcome`)."""

    COMPLETED = "completed"
    #: failed, and tried again later
    RETRIED = "retried"
    #: failed at its last attempt (or killed): not run again
    FAILED = "failed"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"
    #: its worker died (heartbeat stopped); the job was given back by a live worker
    RESCUED = "rescued"
    #: handed to an external service (`qadmin.Waiting`)
    WAITING = "waiting"
    RUNNING = "running"


#: where an attempt's facts come from: recorded by a qadmin worker, or read from the columns of a
#: row (or failure entry) written by a foreign library, which keeps no history of its own
RECORDED = "recorded"
FROM_COLUMNS = "columns"


@dataclass(frozen=True)
class Attempt:
    """One run of a job: when it started, how long it ran, on which worker, how it ended."""

    #: 1 for the first run, counting every run the backend saw (kept ones are the latest)
    number: int | None
    outcome: Outcome
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    #: the first line of the error (`Class: message`), and the traceback after it
    error: str | None = None
    backtrace: str | None = None
    #: `RECORDED`, or `FROM_COLUMNS` for what a foreign row's columns say
    source: str = RECORDED

    @property
    def runtime(self) -> float | None:
        """Seconds it ran (up to now for a running one: None)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)

    @staticmethod
    def span(finished_at: datetime | None, runtime: float | None) -> datetime | None:
        """When a run that ended at `finished_at` after `runtime` seconds started."""
        if finished_at is None or runtime is None:
            return None
        return finished_at - timedelta(seconds=runtime)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "outcome": self.outcome.value,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "runtime": None if self.runtime is None else round(self.runtime, 6),
            "worker": self.worker,
            "error": self.error,
            "backtrace": self.backtrace,
            "source": self.source,
        }


#: job ids a prune report names at most (a prune of millions reports its counts, and these)
PRUNE_IDS_SHOWN = 1000


@dataclass
class PruneReport:
    """What a prune removed (or, with `dry_run`, would remove): failed jobs older than
    `failed_before`, finished records older than `finished_before`, registrations of qadmin
    workers silent since before `workers_before`. A cutoff of None prunes nothing of its kind."""

    failed_before: datetime | None
    finished_before: datetime | None
    workers_before: datetime | None
    dry_run: bool = False
    failed: int = 0
    finished: int = 0
    workers: int = 0
    #: cancel requests of running jobs that ended before their worker saw them, settled
    #: (`backends/cancel_requests.py`: audited each, not counted in `total`)
    cancels: int = 0
    #: the first PRUNE_IDS_SHOWN failed jobs' ids
    failed_ids: list[JobId] = field(default_factory=list)
    worker_names: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.failed + self.finished + self.workers

    def note_failed(self, ids: list[JobId]) -> None:
        self.failed += len(ids)
        self.failed_ids.extend(ids[: max(PRUNE_IDS_SHOWN - len(self.failed_ids), 0)])

    def audit_entry(self, at: datetime, actor: str, face: str) -> AuditEntry:
        """The one audit entry of a prune: its cutoffs and counts in the details."""
        details = {k: v for k, v in self.to_dict().items() if k not in ("verb", "dry_run", "failed_ids")}
        return AuditEntry(
            id=None,
            at=at,
            actor=actor,
            face=face,
            verb="prune",
            selection=details,
            matched=self.total,
            changed=0 if self.dry_run else self.total,
            skipped=0,
            dry_run=self.dry_run,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": "prune",
            "dry_run": self.dry_run,
            "failed_before": iso(self.failed_before),
            "finished_before": iso(self.finished_before),
            "workers_before": iso(self.workers_before),
            "failed": self.failed,
            "finished": self.finished,
            "workers": self.workers,
            "cancels": self.cancels,
            "failed_ids": [str(i) for i in self.failed_ids],
            "worker_names": list(self.worker_names),
        }


@dataclass(frozen=True)
class JobEdit:
    """The new values of an edit; None leaves a field as it is (an empty list or dict is a value)."""

    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    queue: str | None = None
    priority: int | None = None
    run_at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in (self.args, self.kwargs, self.queue, self.priority, self.run_at))


#: the states an edit acts on: a job no worker holds and that still runs or may run again
EDITABLE_STATES = frozenset({JobState.PENDING, JobState.SCHEDULED, JobState.FAILED})


def check_edit(job: Job, changes: JobEdit) -> None:
    """Refuse what no backend can do to `job`: a state edits do not act on (InvalidTransition), or
    a foreign format's arguments (UsageError)."""
    if job.state not in EDITABLE_STATES:
        raise InvalidTransition(job.id, f"{job.state.value} (only pending, scheduled and failed jobs can be)", "edit")
    if not job.decodable:
        raise UsageError(f"job {job.id} cannot be decoded: qadmin does not know its arguments, so it cannot edit it")
    if changes.args is not None or changes.kwargs is not None:
        kind = {"delayed_job": "a delayed_job (YAML)", "djjob": "a DJJob (PHP serialize)"}.get(job.format)
        if kind is not None:
            raise UsageError(
                f"job {job.id} is {kind} job: its arguments cannot be edited by qadmin; queue, priority and run_at can"
            )
