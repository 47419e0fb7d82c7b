"""The `Backend` and `WorkerSession` interfaces every backend implements (`open_backend` is in
`connect.py`).

A backend is where jobs live. Every method is atomic on its own; none of them is a
read-modify-write across calls. Methods that change jobs take ids (frozen by the operations
layer at preview time) and return the ids that *really* changed, so that a job which changed
state in the meantime is reported as skipped, never acted on blindly.

Errors: every method raises only `QadminError`s — `BackendUnavailable` when the server cannot
be reached (driver error chained as `__cause__`), `MissingTable` when the SQL table is absent,
`JobNotFound` from `get`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from qadmin.alert_rules import Incident
from qadmin.backends.cancel_requests import CancelRequest
from qadmin.config import (
    DEFAULT_FAILED_RETENTION,
    DEFAULT_FINISHED_RETENTION,
    DEFAULT_PRUNE_EVERY,
    DEFAULT_WORKER_RETENTION,
    DEFAULT_WORKER_TIMEOUT,
)
from qadmin.filters import JobFilter
from qadmin.insight import DEFAULT_HOURS_KEPT, DEFAULT_MINUTES_KEPT, HistoryRow, HistorySample
from qadmin.job import DEFAULT_MAX_ATTEMPTS, AuditEntry, Job, JobId, JobState, NewJob, QueueInfo, WorkerInfo
from qadmin.model import SORTS, Attempt, ErrorGroup, JobEdit, Page, PruneReport, Stats
from qadmin.recurring import RecurringEntry, Schedule
from qadmin.redaction import Redactor

__all__ = ["SORTS", "Backend", "BackendOptions", "ErrorGroup", "Page", "PruneReport", "Stats", "WorkerSession"]


@runtime_checkable
class Backend(Protocol):
    """Where jobs live (see the module docstring for the error contract)."""

    #: a short word for messages: "sqlite", "postgresql", "redis"
    kind: str
    #: whether jobs carry a meaningful priority (Resque queues have none)
    supports_priority: bool
    #: whether `finished` jobs are recorded for a retention window
    records_finished: bool
    #: what the backend was opened with
    options: BackendOptions
    #: the URL with its password hidden, for messages
    safe_url: str
    #: whether a worker session can let successes wait to travel with its next call
    #: (`session(defer_successes=True)`, `qadmin worker --defer-acks`)
    defers_successes: bool

    # --- set-up ------------------------------------------------------------------------------
    def init(self) -> None:
        """Create qadmin's tables if missing (SQL); a no-op where nothing needs creating."""

    def check(self) -> None:
        """Raise BackendUnavailable / MissingTable unless the backend is usable."""

    def close(self) -> None: ...

    def parse_id(self, text: str) -> JobId:
        """Turn an id as printed by a listing back into this backend's id (UsageError if malformed)."""

    # --- engine verbs (clients and workers) --------------------------------------------------
    def enqueue(self, new: NewJob) -> Job:
        """Store one job; with `new.unique`, return the existing live job of that key instead."""

    def enqueue_many(self, news: Sequence[NewJob]) -> list[JobId]:
        """Store many jobs in as few round trips as the backend allows."""

    def claim(
        self, queues: Sequence[str], worker: str, now: datetime, max_run_time: float, can_run: Callable[[Job], bool]
    ) -> Job | None:
        """Lock one ready job for `worker`: lowest priority number, then earliest run_at.

        Only jobs for which `can_run(job)` is true are locked; others are left untouched.
        Two callers never get the same job. Paused queues are skipped. `queues` may be ["*"].
        """

    def complete(self, job: Job, worker: str, now: datetime, runtime: float) -> None:
        """The job succeeded: remove it from the queue and record the outcome."""

    def fail(self, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        """The job raised: attempts + 1, last_error kept; rescheduled at `retry_at`, or failed
        for good when `retry_at` is None."""

    def release(self, job: Job, worker: str) -> None:
        """Give a claimed job back untouched (the worker is stopping before running it)."""

    def session(self, worker: str, *, defer_successes: bool = False) -> WorkerSession:
        """The worker `worker`'s own session: what a worker loop calls, and the state it keeps
        between calls (a held connection, counters waiting to be written, successes waiting to
        be sent). The backend itself keeps no worker's state: the web and the TUI share it.
        `defer_successes=True` where `defers_successes` is False raises UsageError.

        `defer_successes`: a success may wait (briefly) to travel with the session's next call,
        where the backend can do that; a SIGKILL then reruns the jobs whose success waited."""

    def register_worker(self, info: WorkerInfo) -> None: ...

    def heartbeat(
        self,
        name: str,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None: ...

    def unregister_worker(self, name: str) -> None: ...

    def is_paused(self, queue: str) -> bool: ...

    # --- admin verbs (the operations layer) ---------------------------------------------------
    def get(self, job_id: JobId, now: datetime) -> Job:
        """The job with this id, in any state (JobNotFound otherwise)."""

    def find(
        self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None = None, sort: str = "id"
    ) -> Page:
        """One keyset page of matching jobs; never loads the whole table or list."""

    def iter_ids(self, selection: JobFilter, now: datetime, batch: int = 5000) -> Iterator[list[JobId]]:
        """Every matching id, in batches (an iterator of lists), for previews of bulk verbs."""

    def count(self, selection: JobFilter, now: datetime) -> int: ...

    def retry(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Make these failed jobs pending again (attempts reset, error kept until they run).
        Returns the ids that were failed and changed."""

    def delete(self, ids: Sequence[JobId], now: datetime, states: frozenset[JobState] | None = None) -> list[JobId]:
        """Remove these jobs (only those still in `states`, when given). Returns the ids removed."""

    def unlock(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Release these locks so the jobs are pending again. Returns the ids released."""

    def run_now(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Make these scheduled jobs (a later run, or a retry waiting out its backoff) pending at
        `now`: attempts and last error kept, the stored payload untouched. Only jobs still
        scheduled and unlocked change. Returns the ids that changed."""

    def kill(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """Fail for good, at `now`, these jobs waiting for a retry (scheduled, attempts >= 1):
        attempts unchanged, last error kept, never run again. A scheduled job that never ran
        is not killed. Returns the ids that changed."""

    def edit(self, job_id: JobId, changes: JobEdit, now: datetime) -> Job:
        """Set the new values in `changes` on one pending, scheduled or failed job, keeping its
        stored format valid for its own workers (a change the format cannot hold raises
        UsageError naming why). Guarded: the job must still be as it was read (its bytes and
        columns), else InvalidTransition. Returns the job as it now is (on Redis under its new id)."""

    def cancel(self, ids: Sequence[JobId], now: datetime, actor: str) -> list[JobId]:
        """Cancel these jobs. A pending or scheduled job still unlocked is removed and recorded
        as cancelled by `actor` at `now` (state CANCELLED among the finished records, kept and
        pruned with them); it never runs. A job locked by a registered qadmin worker gets a
        cancel request that worker's session sees (`WorkerSession.cancel_requested`); the worker
        interrupts the job and records it (`WorkerSession.cancelled`). A job locked by any other
        holder (delayed_job, DJJob, Resque) is left alone: its worker cannot be told. Returns the
        ids removed or asked to stop."""

    def foreign_running(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        """The ids among these that run in a worker `cancel` cannot tell to stop (locked by any
        holder but a qadmin worker): what a cancel leaves alone, said before it is applied."""

    def waiting_jobs(self, now: datetime, limit: int = 1000) -> list[Job]:
        """The jobs waiting for an external service (`qadmin.Waiting`), earliest deadline first."""

    def complete_waiting(self, job_id: JobId, now: datetime, result: str | None = None) -> Job:
        """The external service reported success: the waiting job is recorded as finished (with
        `result`) and counted as processed. `InvalidTransition` if it is not waiting (any more)."""

    def fail_waiting(self, job_id: JobId, now: datetime, error: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Job:
        """The external service reported failure: the waiting job fails as a worker's job does
        (retried after the backoff, or failed at its last attempt), counted as failed.
        `InvalidTransition` if it is not waiting (any more)."""

    def remove_waiting(self, ids: Sequence[JobId], now: datetime, cancelled_by: str | None = None) -> list[JobId]:
        """Take these waiting jobs out of waiting, each guarded by its entry as read (a report back
        racing this moves the job once): deleted, or with `cancelled_by` recorded as cancelled by
        that operator (state CANCELLED, as `cancel` records a pending job), so that the service's
        report afterwards finds no waiting job. Ids that are not waiting are left out. Returns the
        ids removed."""

    def cancel_request(self, job_id: JobId) -> CancelRequest | None:
        """The open cancel request of this job (`cancel` of a running job), None when there is none."""

    def settle_cancels(self, now: datetime, face: str, *, dry_run: bool = False) -> list[JobId]:
        """Drop the cancel requests whose job no longer runs the run they were made for (it ended
        before its worker saw them), each guarded by the request as read and audited against its
        job (`backends/cancel_requests.py`: verb `cancel_missed`, recorded as done by `face`).
        `dry_run` writes nothing. Returns the jobs' ids. `prune` does this too (`PruneReport.cancels`)."""

    # --- attempt history (`backends/history.py`) -------------------------------------------------
    def attempts(self, job_id: JobId, now: datetime) -> list[Attempt]:
        """Every run of the job kept, oldest first, numbered from its first run: each that failed,
        was retried, timed out or was rescued from a dead worker (recorded by the worker session
        with that outcome: the latest `history.ATTEMPTS_KEPT`, error and backtrace capped); then the
        run its finished record describes (completed, or cancelled while running), or the one
        running now. A foreign row with no run recorded by qadmin gives what its columns hold
        (attempts, last error, failed_at, the lock), marked `FROM_COLUMNS`. `JobNotFound` as `get`.
        Prune removes a job's records with the job."""

    # --- history (`qadmin.insight`) ---------------------------------------------------------------
    def record_history(self, samples: Sequence[HistorySample]) -> None:
        """Add a worker's counts to the stored history: each sample to the bucket of its minute
        and to that of its hour (queue and class kept apart), counts and runtime buckets added,
        latency kept as the maximum. Atomic increments, so any number of workers and hosts may
        record at once without losing a count. Minute buckets older than
        `options.history_minutes` and hour buckets older than `options.history_hours` are dropped
        (by expiry, or by `prune`)."""

    def history(
        self,
        resolution: str,
        since: datetime,
        until: datetime,
        *,
        queue: str | None = None,
        job_class: str | None = None,
    ) -> list[HistoryRow]:
        """The stored buckets of `resolution` (`insight.MINUTE` or `insight.HOUR`) starting in
        [since, until), per queue and class, oldest first; only `queue` / `job_class` (exact
        names) when given. Missing buckets are simply absent."""

    def oldest_ready(self, queues: Sequence[str], now: datetime) -> dict[str, datetime]:
        """For each of `queues` (["*"]: every queue) with a job ready to run at `now`, since when
        its oldest ready job has been ready (run_at, else its enqueue time): what a worker samples
        as the queue's latency. Cheap: an index lookup per queue on SQL, a queue's head on Redis."""

    # --- recurring schedules (`qadmin.recurring`) ------------------------------------------------
    def schedules(self, now: datetime) -> list[RecurringEntry]:
        """Every stored schedule, by name, with what is remembered of its runs. On Redis this
        includes resque-scheduler's persisted schedules (`persistent_schedules`), whoever wrote
        them; an entry that cannot be read as a schedule is left out of the list (and logged),
        never an error for the others."""

    def save_schedule(self, schedule: Schedule, now: datetime) -> RecurringEntry:
        """Create or replace the schedule `schedule.name` (enabled or not as it says). A new
        schedule is armed at `schedule.previous_tick(now)`: its first job is enqueued at its next
        tick, not for a tick that passed before it existed. Replacing keeps the memory of the last
        tick fired, so a save never fires a tick twice; a save that enables a disabled schedule, or
        changes its timing (cron, every, timezone), arms it again at
        max(last tick fired, `schedule.previous_tick(now)`): it resumes at its next tick, the
        ticks it missed are not caught up. On Redis it is written as resque-scheduler persists one
        (so Ruby's scheduler runs it), a disabled one out of its sight."""

    def remove_schedule(self, name: str) -> bool:
        """Forget a schedule (and its memory of ticks); False if there was none."""

    def fire_schedule(self, name: str, tick: datetime | None, new: NewJob, now: datetime) -> Job | None:
        """Enqueue `new` as schedule `name`'s job for `tick`, exactly once across every process
        and host: the tick is compared with the last one fired and recorded in the same atomic
        step as the enqueue, and None is returned (nothing enqueued) when this tick or a later
        one was fired already, or the schedule is disabled. A schedule with no tick remembered
        (written by another library, never seen by qadmin) is armed at `tick` instead: None.
        `tick=None` is "run now": always enqueues (enabled or not), records the run (last run,
        last job) and consumes no tick. `JobNotFound`-free: a schedule that is gone gives None for
        a tick; run now of an unknown name raises `ScheduleNotFound` (a `QadminError`, exit code
        2) and enqueues nothing."""

    def schedule_leader(self, holder: str, ttl: float) -> bool:
        """Whether the scheduler process `holder` may fire ticks now; called before every pass.
        Redis: resque-scheduler's master lock, taken or extended for `ttl` seconds, so a qadmin
        scheduler and Ruby's never both enqueue the same schedules. SQL: always True
        (`fire_schedule`'s compare-and-set alone keeps each tick to one job)."""

    # --- alert incidents (`qadmin.alert_rules`, `ops/alerts.py`) ------------------------------------
    def alert_incidents(self, now: datetime) -> list[Incident]:
        """Every stored incident, one per rule at most, by rule name: the open ones and the last
        resolved one of each rule."""

    def open_incident(self, rule: str, now: datetime, details: str) -> bool:
        """Open an incident of `rule` at `now`, unless one is open: a compare-and-set, so that
        among any number of processes (and hosts) evaluating the rule at once exactly one gets
        True. A resolved incident of the rule is replaced (its resolved message, if still unsent,
        is not sent: the new firing one says more)."""

    def resolve_incident(self, rule: str, now: datetime) -> bool:
        """Resolve the open incident of `rule` at `now`: True for the one caller that did; False
        when none is open."""

    def claim_alert_delivery(self, rule: str, opened_at: datetime, message: str, now: datetime, lease: float) -> bool:
        """Whether the caller may send `message` ("firing" or "resolved") of the incident of `rule`
        opened at `opened_at`: True, for one caller, when it is still that incident, the message is
        unsent (and, for "resolved", the incident resolved) and no other caller claimed it in the
        last `lease` seconds. The claim is that lease: a sender that died lets another retry."""

    def finish_alert_delivery(self, rule: str, opened_at: datetime, message: str, sent_at: datetime | None) -> None:
        """End a claimed delivery: recorded as sent at `sent_at` (never claimed again), or, with
        None (the webhook failed), released for the next evaluation to retry."""

    def stats(self, now: datetime, max_run_time: float) -> Stats: ...

    def error_groups(self, selection: JobFilter, now: datetime, limit: int = 100) -> list[ErrorGroup]: ...

    def queues(self, now: datetime) -> list[QueueInfo]: ...

    def queue_names(self, now: datetime) -> list[str]:
        """The queues a menu offers, as cheaply as the backend can name them (no counting)."""

    @property
    def where(self) -> str:
        """Where the jobs live, for messages: `safe_url` and, on SQL, the table."""

    def workers(self, now: datetime) -> list[WorkerInfo]: ...

    def pause(self, queue: str, now: datetime) -> bool:
        """Pause a queue; False if it already was."""

    def resume(self, queue: str) -> bool:
        """Resume a queue; False if it was not paused."""

    def paused(self) -> list[str]: ...

    def record_audit(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None: ...

    def audit(self, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]: ...

    def prune(
        self,
        now: datetime,
        *,
        failed_before: datetime | None,
        finished_before: datetime | None,
        workers_before: datetime | None,
        dry_run: bool = False,
    ) -> PruneReport:
        """Remove failed jobs that failed before `failed_before` (only what the row's or entry's own
        library also counts as failed), finished records older than `finished_before`, and the
        registrations of qadmin workers without a heartbeat since `workers_before` (never a
        foreign library's workers). None prunes nothing of that kind. In short batches, each
        removal guarded by what was read, so a job another client changed meanwhile stays.
        `dry_run` counts and changes nothing. Records no audit entry (the caller does)."""


@dataclass(frozen=True)
class BackendOptions:
    table: str | None = None
    namespace: str = "resque"
    #: seconds after which a lock counts as stale (delayed_job's max_run_time)
    max_run_time: float = 4 * 3600.0
    #: seconds without a heartbeat after which a qadmin worker counts as dead
    worker_timeout: float = DEFAULT_WORKER_TIMEOUT
    #: how long finished outcomes are kept
    finished_retention: float = DEFAULT_FINISHED_RETENTION
    #: seconds a failed job is kept before a prune removes it; None keeps failed jobs for ever
    failed_retention: float | None = DEFAULT_FAILED_RETENTION
    #: seconds a qadmin worker may be silent before a prune removes it from the workers list;
    #: None keeps dead workers listed until unlocked or removed by hand
    worker_retention: float | None = DEFAULT_WORKER_RETENTION
    #: at most one automatic prune per this many seconds per backend (`WorkerSession.prune_if_due`);
    #: None turns the workers' automatic pruning off
    prune_every: float | None = DEFAULT_PRUNE_EVERY
    #: how long history is kept per resolution (`[history] minutes`, `[history] hours`), seconds
    history_minutes: float = DEFAULT_MINUTES_KEPT
    history_hours: float = DEFAULT_HOURS_KEPT
    #: what audit entries are stored without (`[redact]`): a secret in a selection never reaches the log
    audit_redactor: Redactor = field(default_factory=Redactor)


def retention_cutoffs(
    options: BackendOptions, now: datetime, older_than: float | None = None
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """The (failed, finished, workers) cutoffs of a prune at `now`: from the retention options,
    or `older_than` seconds for both kinds of job (the workers keep their own retention)."""

    def before(seconds: float | None) -> datetime | None:
        return None if seconds is None else now - timedelta(seconds=seconds)

    if older_than is not None:
        return before(older_than), before(older_than), before(options.worker_retention)
    return before(options.failed_retention), before(options.finished_retention), before(options.worker_retention)


@runtime_checkable
class WorkerSession(Protocol):
    """One worker's verbs on a backend, all of them required (`Backend.session` opens one).

    A session belongs to one worker loop (one thread); it is not shared. Every verb raises only
    `QadminError`s, as the backend's do. The worker retries an outcome after
    `BackendUnavailable`, so `complete`, `complete_and_claim` and `fail` must be harmless to
    repeat: a second call neither counts the job twice nor touches a job no longer locked by
    this worker."""

    #: the worker's name, the lock owner written on what it claims
    worker: str

    def claim(
        self,
        queues: Sequence[str],
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int = 1,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        """Lock up to `limit` ready jobs, in claim order (lowest priority number, then earliest
        run_at; `queues` in the order given, or ["*"]). Only jobs for which `can_run(job)` is
        true are locked; `skip_ids` are not looked at. Two sessions never get the same job."""

    def complete(self, job: Job, now: datetime, runtime: float, result: str | None = None) -> None:
        """The job succeeded: remove it from the queue and record the outcome. `result` is what it
        returned as `qadmin.job.result_text` keeps it, stored with its finished record (None:
        nothing to keep, and nothing more to write)."""

    def complete_and_claim(
        self,
        job: Job,
        now: datetime,
        runtime: float,
        queues: Sequence[str],
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int,
        skip_ids: Sequence[JobId] = (),
        result: str | None = None,
    ) -> list[Job]:
        """`complete(job, result=result)` then `claim(...)`, in as few round trips as the backend can (one
        transaction on SQL, one script call on Redis)."""

    def fail(
        self, job: Job, now: datetime, error: str, retry_at: datetime | None, runtime: float | None = None
    ) -> None:
        """The job raised: attempts + 1, last_error kept; rescheduled at `retry_at`, or failed
        for good when `retry_at` is None. The run is recorded in the same write (`Backend.attempts`),
        `runtime` seconds long (from the job's lock when None); `error` is the message line, then
        the traceback."""

    def refresh(self, job: Job, now: datetime) -> bool:
        """Renew this worker's lock on the job; False if the lock is no longer this worker's."""

    def release(self, jobs: Sequence[Job]) -> None:
        """Give claimed jobs back untouched (the worker stops before running them)."""

    def cancel_requested(self, job: Job) -> bool:
        """Whether an operator asked, since this worker locked it, that the job it runs be
        cancelled (`Backend.cancel`). Called from the heartbeat's thread: it uses none of the
        session's per-call state."""

    def cancelled(self, job: Job, now: datetime) -> bool:
        """The job was interrupted at an operator's request: remove it and its lock, record it as
        cancelled (never completed, failed or retried), and drop the request. False (nothing
        written) when this worker no longer holds the job; harmless to repeat."""

    def wait(self, job: Job, now: datetime, until: datetime) -> bool:
        """The job handed its work to an external service (`qadmin.Waiting`): its lock is let go
        and it is kept, claimed by no worker (qadmin's or a foreign one), until reported back or
        `until`. False (nothing written) when this worker no longer holds the job."""

    def settle_cancels(self, now: datetime) -> list[JobId]:
        """`Backend.settle_cancels` from a live worker (face "worker"): a cancel request whose job
        ended first is dropped and audited within a rescue interval. Called from the rescue
        thread: it uses none of the session's per-call state."""

    def expire_waiting(self, now: datetime) -> list[JobId]:
        """Fail the waiting jobs whose deadline has passed (`qadmin.waiting.timeout_error`), each
        once however many workers expire at once. Called from the rescue thread: it uses none of
        the session's per-call state."""

    def register(self, info: WorkerInfo) -> None: ...

    def heartbeat(
        self, now: datetime, current_job: JobId | None, job_started_at: datetime | None, processed: int, failed: int
    ) -> None: ...

    def unregister(self) -> None: ...

    def rescue(self, now: datetime) -> dict[str, list[JobId]]:
        """Give back the jobs locked by qadmin workers whose heartbeat stopped more than
        `BackendOptions.worker_timeout` ago (`owners.heartbeat_stopped`), as `unlock` would:
        each job at most once however many workers rescue at once, and never one whose lock was
        renewed or taken since it was read. Locks of holders that never registered a heartbeat
        (delayed_job, DJJob, Resque workers) are left to their own libraries' rules. Each rescue
        that gave anything back is counted (`Stats.rescued`) and audited (verb "rescue", face
        "worker", this worker as the actor). Returns the ids given back, by the dead worker
        that held them. Called from a thread of its own: it uses none of the session's per-call
        state."""

    def paused(self) -> list[str]:
        """The paused queues (the worker names those it serves while they wait)."""

    def flush(self) -> None:
        """Write what the session holds back (counters, deferred successes); called when idle."""

    def close(self) -> None:
        """Flush, then let go of the session's own connections."""

    def prune_if_due(self, now: datetime) -> PruneReport | None:
        """Prune by the backend's retention options (`BackendOptions`) if no worker of this
        backend did in the last `prune_every` seconds: a cheap marker in the backend, taken by
        one worker only, so that N workers do not all prune. None when not due (or turned off)."""
