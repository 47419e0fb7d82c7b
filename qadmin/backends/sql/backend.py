"""`SqlBackend`: the SQL backend, assembled from parts with one job each, which receive what they
need when it opens: the store (connections, tables), the dialect's worker verbs, enqueue, the
admin reads, bulk changes, stats and error groups, and the bookkeeping (workers, pauses, audit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from qadmin.alert_rules import Incident
from qadmin.backends.base import BackendOptions
from qadmin.backends.cancel_requests import CancelRequest
from qadmin.backends.history import assemble
from qadmin.backends.sql.alerts import Incidents
from qadmin.backends.sql.attempts import Attempts
from qadmin.backends.sql.bookkeeping import Bookkeeping
from qadmin.backends.sql.cancel import Cancelling
from qadmin.backends.sql.changes import Changes
from qadmin.backends.sql.choose import choose
from qadmin.backends.sql.edit import Edit
from qadmin.backends.sql.enqueue import Enqueue
from qadmin.backends.sql.history import History
from qadmin.backends.sql.layout import Layouts
from qadmin.backends.sql.lifecycle import Lifecycle
from qadmin.backends.sql.prune import Prune
from qadmin.backends.sql.reads import Reads
from qadmin.backends.sql.recurring import Schedules
from qadmin.backends.sql.rescue import Rescue
from qadmin.backends.sql.results import Results
from qadmin.backends.sql.rows import RowReader
from qadmin.backends.sql.selection import Selection
from qadmin.backends.sql.session import SqlWorkerSession
from qadmin.backends.sql.state import Counters, HeldConnection, WorkerState
from qadmin.backends.sql.statements import Prebuilt
from qadmin.backends.sql.stats import StatsReader
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import parse_id
from qadmin.backends.sql.verbs import WorkerParts
from qadmin.backends.sql.waiting import Waiting
from qadmin.errors import JobNotFound, UsageError
from qadmin.filters import JobFilter
from qadmin.insight import HistoryRow, HistorySample
from qadmin.job import DEFAULT_MAX_ATTEMPTS, AuditEntry, Job, JobId, JobState, NewJob, QueueInfo, WorkerInfo, utcnow
from qadmin.model import Attempt, ErrorGroup, JobEdit, Page, PruneReport, Stats
from qadmin.recurring import RecurringEntry, Schedule


class SqlBackend:
    """SQLAlchemy 2 Core over delayed_job's `delayed_jobs` table (or DJJob's `jobs`).

    Claims follow docs/compatibility.md §4.2 and §8.5: only a row the worker can run is locked,
    by an UPDATE guarded by the ready predicate. `prepared=False` runs the worker's verbs and
    enqueue on the portable reference (`verbs.CoreVerbs`) instead of the database's own fast
    ones (`sqlite_verbs.SqliteVerbs`, `prepared_pg.PreparedPg`): for tests that check they agree.
    """

    supports_priority = True
    records_finished = True
    #: every success is one transaction already, with the next claim
    defers_successes = False

    def __init__(self, url: str, options: BackendOptions, *, prepared: bool = True) -> None:
        self.options = options
        engine = choose(url, prepared)
        dialect = self.dialect = engine.dialect
        self.kind = dialect.name
        self.engine = dialect.engine
        self.store = Store(dialect, options)
        self.safe_url = self.store.safe_url
        self.rows = RowReader(options.max_run_time)
        self.layouts = Layouts(self.store)
        self.verbs = engine.verbs(WorkerParts(self.store, Prebuilt(self.store), self.rows))
        self.selection = Selection(self.store, options)
        self.results = Results(self.store)
        self.reads = Reads(self.store, self.selection, self.rows, self.results)
        self.changes = Changes(self.store, self.selection)
        self.lifecycle = Lifecycle(self.store, self.selection, self.changes)
        self.editor = Edit(self.store, self.reads)
        self.bookkeeping = Bookkeeping(self.store, self.selection, options)
        self.stats_reader = StatsReader(self.store, self.selection, self.reads, self.bookkeeping, options)
        self.enqueuer = Enqueue(self.store, self.layouts, self.verbs, self.rows, self.reads)
        self.rescuer = Rescue(self.store, self.selection, self.changes, self.bookkeeping, options)
        self.history_store = History(self.store, options)
        self.pruner = Prune(self.store, self.history_store)
        self.canceller = Cancelling(self.store, self.selection, self.rows, self.bookkeeping.record_audit, self._job_of)
        self.waiting = Waiting(self.store, self.rows, self.canceller)
        self.recurring = Schedules(self.store, self.enqueuer)
        self.attempt_log = Attempts(self.store)
        self.incidents = Incidents(self.store)

    # --- set-up ------------------------------------------------------------------------------
    def init(self) -> None:
        self.store.init()

    def check(self) -> None:
        self.store.jobs()

    def close(self) -> None:
        try:
            self.enqueuer.close()
        finally:
            self.engine.dispose()

    def parse_id(self, text: str) -> JobId:
        return parse_id(text)

    @property
    def table_name(self) -> str:
        return self.store.table_name

    # --- engine verbs ------------------------------------------------------------------------
    def enqueue(self, new: NewJob, now: datetime | None = None) -> Job:
        return self.enqueuer.enqueue(new, now)

    def enqueue_many(self, news: Sequence[NewJob], now: datetime | None = None) -> list[JobId]:
        return self.enqueuer.enqueue_many(news, now)

    def session(self, worker: str, *, defer_successes: bool = False) -> SqlWorkerSession:
        """The worker's session. SQL cannot defer successes (`defers_successes`): asking for it is
        refused rather than ignored."""
        if defer_successes:
            raise UsageError(
                f"deferred successes are not available on {self.kind}: every success is one transaction there already"
            )
        return SqlWorkerSession(
            worker,
            self.store,
            self.verbs,
            self.bookkeeping,
            self.rescuer,
            pruner=self.pruner,
            results=self.results,
            canceller=self.canceller,
            waiting=self.waiting,
        )

    def _one_shot(self) -> WorkerState:
        """A worker's state for one call: a connection for it alone, counts written at once."""
        return WorkerState(HeldConnection(self.store, self.dialect.hot_engine, keep=False), Counters(self.store, 0.0))

    def claim(
        self, queues: Sequence[str], worker: str, now: datetime, max_run_time: float, can_run: Callable[[Job], bool]
    ) -> Job | None:
        jobs = self.verbs.claim(self._one_shot(), queues, worker, now, max_run_time, can_run, 1)
        return jobs[0] if jobs else None

    def complete(self, job: Job, worker: str, now: datetime, runtime: float) -> None:
        self.verbs.complete(self._one_shot(), job, worker, now, runtime)

    def fail(self, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        self.verbs.fail(self._one_shot(), job, worker, now, error, retry_at)

    def release(self, job: Job, worker: str) -> None:
        self.verbs.release(self._one_shot(), [job], worker)

    def register_worker(self, info: WorkerInfo) -> None:
        self.bookkeeping.register_worker(info)

    def heartbeat(
        self,
        name: str,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None:
        self.bookkeeping.heartbeat(name, now, current_job, job_started_at, processed, failed)

    def unregister_worker(self, name: str) -> None:
        self.bookkeeping.unregister_worker(name)

    def is_paused(self, queue: str) -> bool:
        return self.bookkeeping.is_paused(queue)

    # --- admin verbs -------------------------------------------------------------------------
    def get(self, job_id: JobId, now: datetime) -> Job:
        try:
            return self.reads.get(job_id, now)
        except JobNotFound:
            waiting = self.waiting.get(job_id, now)
            if waiting is None:
                raise
            return waiting

    def _job_of(self, job_id: JobId) -> Job | None:
        try:
            return self.get(job_id, utcnow())
        except JobNotFound:
            return None

    def attempts(self, job_id: JobId, now: datetime) -> list[Attempt]:
        job = self.get(job_id, now)
        kept, total = self.attempt_log.of(job.id)
        return assemble(job, kept, total)

    def find(
        self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None = None, sort: str = "id"
    ) -> Page:
        return self.reads.find(selection, now, limit=limit, cursor=cursor, sort=sort)

    def iter_ids(self, selection: JobFilter, now: datetime, batch: int = 5000) -> Iterator[list[JobId]]:
        return self.reads.iter_ids(selection, now, batch)

    def count(self, selection: JobFilter, now: datetime) -> int:
        return self.reads.count(selection, now)

    def retry(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        return self.changes.retry(ids, now)

    def delete(self, ids: Sequence[JobId], now: datetime, states: frozenset[JobState] | None = None) -> list[JobId]:
        return self.changes.delete(ids, now, states)

    def unlock(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        return self.changes.unlock(ids, now)

    def run_now(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        return self.lifecycle.run_now(ids, now)

    def kill(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        return self.lifecycle.kill(ids, now)

    def edit(self, job_id: JobId, changes: JobEdit, now: datetime) -> Job:
        return self.editor.edit(job_id, changes, now)

    def cancel(self, ids: Sequence[JobId], now: datetime, actor: str) -> list[JobId]:
        return self.canceller.cancel(ids, now, actor)

    def foreign_running(self, ids: Sequence[JobId], now: datetime) -> list[JobId]:
        return self.canceller.foreign_running(ids)

    def waiting_jobs(self, now: datetime, limit: int = 1000) -> list[Job]:
        return self.waiting.listing(now, limit)

    def complete_waiting(self, job_id: JobId, now: datetime, result: str | None = None) -> Job:
        return self.waiting.complete(self._one_shot().counters, job_id, now, result)

    def fail_waiting(self, job_id: JobId, now: datetime, error: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Job:
        return self.waiting.fail(self._one_shot().counters, job_id, now, error, max_attempts)

    # --- alert incidents (`sql/alerts.py`) ------------------------------------------------------
    def alert_incidents(self, now: datetime) -> list[Incident]:
        return self.incidents.incidents()

    def open_incident(self, rule: str, now: datetime, details: str) -> bool:
        return self.incidents.open(rule, now, details)

    def resolve_incident(self, rule: str, now: datetime) -> bool:
        return self.incidents.resolve(rule, now)

    def claim_alert_delivery(self, rule: str, opened_at: datetime, message: str, now: datetime, lease: float) -> bool:
        return self.incidents.claim(rule, opened_at, message, now, lease)

    def finish_alert_delivery(self, rule: str, opened_at: datetime, message: str, sent_at: datetime | None) -> None:
        self.incidents.finish(rule, opened_at, message, sent_at)

    # --- history (`sql/history.py`) ----------------------------------------------------------
    def record_history(self, samples: Sequence[HistorySample]) -> None:
        self.history_store.record(samples)

    def history(
        self,
        resolution: str,
        since: datetime,
        until: datetime,
        *,
        queue: str | None = None,
        job_class: str | None = None,
    ) -> list[HistoryRow]:
        return self.history_store.rows(resolution, since, until, queue, job_class)

    def oldest_ready(self, queues: Sequence[str], now: datetime) -> dict[str, datetime]:
        return self.history_store.oldest_ready(queues, now)

    # --- recurring schedules (`sql/recurring.py`) -----------------------------------------------
    def schedules(self, now: datetime) -> list[RecurringEntry]:
        return self.recurring.entries()

    def save_schedule(self, schedule: Schedule, now: datetime) -> RecurringEntry:
        return self.recurring.save(schedule, now)

    def remove_schedule(self, name: str) -> bool:
        return self.recurring.remove(name)

    def fire_schedule(self, name: str, tick: datetime | None, new: NewJob, now: datetime) -> Job | None:
        return self.recurring.fire(name, tick, new, now)

    def schedule_leader(self, holder: str, ttl: float) -> bool:
        """Any number of SQL schedulers run at once: `fire_schedule`'s compare-and-set keeps each
        tick to one job."""
        return True

    def remove_waiting(self, ids: Sequence[JobId], now: datetime, cancelled_by: str | None = None) -> list[JobId]:
        return self.waiting.remove(ids, now, cancelled_by)

    def cancel_request(self, job_id: JobId) -> CancelRequest | None:
        return self.canceller.request_for(job_id)

    def settle_cancels(self, now: datetime, face: str, *, dry_run: bool = False) -> list[JobId]:
        return self.canceller.settle(now, face, dry_run)

    def stats(self, now: datetime, max_run_time: float | None = None) -> Stats:
        return self.stats_reader.stats(now, max_run_time)

    def error_groups(self, selection: JobFilter, now: datetime, limit: int = 100) -> list[ErrorGroup]:
        return self.stats_reader.error_groups(selection, now, limit)

    def queues(self, now: datetime) -> list[QueueInfo]:
        return self.stats_reader.queues(now)

    def queue_names(self, now: datetime) -> list[str]:
        """SQL knows its queues only by reading the jobs table: the same read as `queues`."""
        return [q.name for q in self.queues(now)]

    @property
    def where(self) -> str:
        return f"{self.safe_url} ({self.table_name})"

    def workers(self, now: datetime) -> list[WorkerInfo]:
        return self.bookkeeping.workers(now)

    def pause(self, queue: str, now: datetime) -> bool:
        return self.bookkeeping.pause(queue, now)

    def resume(self, queue: str) -> bool:
        return self.bookkeeping.resume(queue)

    def paused(self) -> list[str]:
        return self.bookkeeping.paused()

    def record_audit(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        self.bookkeeping.record_audit(self.options.audit_redactor.audit_entry(entry), job_ids)

    def audit(self, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]:
        return self.bookkeeping.audit(limit, job_id)

    def prune(
        self,
        now: datetime,
        *,
        failed_before: datetime | None,
        finished_before: datetime | None,
        workers_before: datetime | None,
        dry_run: bool = False,
    ) -> PruneReport:
        report = self.pruner.prune(
            now,
            failed_before=failed_before,
            finished_before=finished_before,
            workers_before=workers_before,
            dry_run=dry_run,
        )
        report.cancels = len(self.canceller.settle(now, "prune", dry_run))
        return report
