"""`RedisBackend`: the parts of the Redis backend put together (the package docstring says what
it keeps where). Every verb is one part's; the backend holds no worker's state (`session`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from qadmin.alert_rules import Incident
from qadmin.backends.base import BackendOptions
from qadmin.backends.cancel_requests import CancelRequest
from qadmin.backends.history import assemble
from qadmin.backends.redis.alerts import Incidents
from qadmin.backends.redis.attempts import AttemptLog
from qadmin.backends.redis.audit import Audit
from qadmin.backends.redis.cancel import Cancelling
from qadmin.backends.redis.changes import Changes
from qadmin.backends.redis.edit import Edit
from qadmin.backends.redis.enqueue import MOVE_STAMPS, Enqueuer
from qadmin.backends.redis.history import RedisHistory
from qadmin.backends.redis.ids import readings
from qadmin.backends.redis.lifecycle import Lifecycle
from qadmin.backends.redis.listings import Listings
from qadmin.backends.redis.memory import Memory
from qadmin.backends.redis.own_connection import OwnConnection
from qadmin.backends.redis.pauses import Pauses
from qadmin.backends.redis.prune import RedisPrune
from qadmin.backends.redis.reader import Reader
from qadmin.backends.redis.recurring import Recurring
from qadmin.backends.redis.rescue import Rescue
from qadmin.backends.redis.server import Server, own_params
from qadmin.backends.redis.session import RedisWorkerSession, SuccessWrites
from qadmin.backends.redis.stats import Counts
from qadmin.backends.redis.view import View
from qadmin.backends.redis.waiting import Waiting
from qadmin.backends.redis.wanted import Wanted
from qadmin.backends.redis.workers import Workers
from qadmin.errors import BackendUnavailable, ConfigError, JobNotFound
from qadmin.filters import JobFilter
from qadmin.insight import HistoryRow, HistorySample
from qadmin.job import DEFAULT_MAX_ATTEMPTS, AuditEntry, Job, JobId, NewJob, QueueInfo, WorkerInfo, utcnow
from qadmin.model import Attempt, ErrorGroup, JobEdit, Page, PruneReport, Stats
from qadmin.recurring import RecurringEntry, Schedule

#: what `?failed_on_retry=` may say
RETRY_MODES = ("mark", "remove")


class RedisBackend:
    kind = "redis"
    supports_priority = False
    records_finished = True
    defers_successes = True

    def __init__(
        self,
        url: str,
        options: BackendOptions | None = None,
        *,
        failed_on_retry: str | None = None,
        success_writes: SuccessWrites = SuccessWrites.PIPELINED,
    ) -> None:
        self.options = options or BackendOptions()
        url, params = own_params(url)
        self.failed_on_retry = failed_on_retry or params.get("failed_on_retry", "mark")
        if self.failed_on_retry not in RETRY_MODES:
            raise ConfigError(f"failed_on_retry must be one of {', '.join(RETRY_MODES)}, not {self.failed_on_retry!r}")
        #: how the sessions this backend opens write successes (`session.py`)
        self.success_writes = success_writes
        self.server = server = Server(url, self.options)
        self.safe_url = server.safe_url
        self.client = server.client
        self.keys = server.keys
        # enqueue's script calls go on a connection of their own too (spared a pool checkout)
        self._own: OwnConnection[Any] = OwnConnection(server)
        self.memory = Memory()
        self.pauses = Pauses(server)
        self.registry = Workers(server)
        self.audit_log = Audit(server)
        self.rescuer = Rescue(server, self.audit_log)
        self.counter = Counts(server, self.pauses)
        self.listings = Listings(server, self.memory, self.counter)
        self.changes = Changes(server, self.memory, self.failed_on_retry)
        self.lifecycle = Lifecycle(server, self.changes)
        self.editor = Edit(server, self.changes)

        self.canceller = Cancelling(server, self.changes, self.audit_log.record, self._job_of)
        self.waiting = Waiting(server)
        self.enqueuer = Enqueuer(server, self._own, self.listings.get)
        self.recurring = Recurring(server, self.enqueuer.encode)
        self.attempt_log = AttemptLog(server)
        self.incidents = Incidents(server)
        self.pruner = RedisPrune(server, self.audit_log, self.attempt_log)
        self.history_store = RedisHistory(server, self.options)

    # --- set-up ------------------------------------------------------------------------------
    def init(self) -> None:
        self.check()

    def check(self) -> None:
        with self.server.wrap():
            self.client.ping()

    def close(self) -> None:
        self._own.close()
        self.server.close()

    def parse_id(self, text: str) -> JobId:
        """The first reading of an id that names a job (`ids.readings`: as listed, as shown, as
        pasted); when none does, the id as typed without blanks around it."""
        found = readings(text)
        plain = str(text).strip()
        if len(found) == 1:
            return next(iter(found))
        try:
            with self.server.wrap():
                hits = View(self.server, utcnow()).lookup(Wanted(list(found.values())), first_live=True)
        except BackendUnavailable:  # the verb that follows says so
            hits = {}
        return next(
            (t for t, parts in found.items() if hits.get(parts)), plain if plain in found else next(iter(found))
        )

    # --- engine verbs ------------------------------------------------------------------------
    def session(self, worker: str, *, defer_successes: bool = False) -> RedisWorkerSession:
        return RedisWorkerSession(
            self.server,
            worker,
            workers=self.registry,
            pauses=self.pauses,
            rescuer=self.rescuer,
            move_due=self.move_due,
            pruner=self.pruner,
            settle_cancels=self.canceller.settle,
            defer_successes=defer_successes,
            success_writes=self.success_writes,
        )

    def _one_shot(self, worker: str) -> RedisWorkerSession:
        """A session for one verb: it remembers nothing after the call (a job claimed by one is
        found again in the locked set), and sends nothing without waiting."""
        return RedisWorkerSession(
            self.server,
            worker,
            workers=self.registry,
            pauses=self.pauses,
            rescuer=self.rescuer,
            move_due=self.move_due,
            pruner=self.pruner,
            settle_cancels=self.canceller.settle,
            success_writes=SuccessWrites.AWAITED,
            own=self._own,
        )

    def enqueue(self, new: NewJob) -> Job:
        return self.enqueuer.enqueue(new)

    def enqueue_many(self, news: Sequence[NewJob]) -> list[JobId]:
        return self.enqueuer.enqueue_many(news)

    def move_due(self, now: datetime, stamps: int = MOVE_STAMPS) -> int:
        return self.enqueuer.move_due(now, stamps)

    def claim(
        self,
        queues: Sequence[str],
        worker: str,
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        skip_ids: Sequence[JobId] = (),
    ) -> Job | None:
        jobs = self._one_shot(worker).claim(queues, now, max_run_time, can_run, 1, skip_ids)
        return jobs[0] if jobs else None

    def complete(self, job: Job, worker: str, now: datetime, runtime: float) -> None:
        self._one_shot(worker).complete(job, now, runtime)

    def fail(self, job: Job, worker: str, now: datetime, error: str, retry_at: datetime | None) -> None:
        self._one_shot(worker).fail(job, now, error, retry_at)

    def release(self, job: Job, worker: str) -> None:
        self._one_shot(worker).release([job])

    def register_worker(self, info: WorkerInfo) -> None:
        self.registry.register(info)

    def heartbeat(
        self,
        name: str,
        now: datetime,
        current_job: JobId | None,
        job_started_at: datetime | None,
        processed: int,
        failed: int,
    ) -> None:
        self.registry.heartbeat(name, None, now, current_job, job_started_at, processed, failed)

    def unregister_worker(self, name: str) -> None:
        self.registry.unregister(name, self.server.rid(name))

    def is_paused(self, queue: str) -> bool:
        return self.pauses.is_paused(queue)

    # --- admin verbs -------------------------------------------------------------------------
    def get(self, job_id: JobId, now: datetime) -> Job:
        try:
            return self.listings.get(job_id, now)
        except JobNotFound:
            waiting = self.waiting.get(job_id)
            if waiting is None:
                raise
            return waiting

    def attempts(self, job_id: JobId, now: datetime) -> list[Attempt]:
        job = self.get(job_id, now)
        kept, total = self.attempt_log.of(job.id)
        return assemble(job, kept, total)

    def find(
        self, selection: JobFilter, now: datetime, *, limit: int, cursor: str | None = None, sort: str = "id"
    ) -> Page:
        return self.listings.find(selection, now, limit=limit, cursor=cursor, sort=sort)

    def iter_ids(self, selection: JobFilter, now: datetime, batch: int = 5000) -> Iterator[list[JobId]]:
        return self.listings.iter_ids(selection, now, batch)

    def count(self, selection: JobFilter, now: datetime) -> int:
        return self.listings.count(selection, now)

    def retry(self, ids: Sequence[JobId], now: datetime, *, remove: bool | None = None) -> list[JobId]:
        return self.changes.retry(ids, now, remove=remove)

    def delete(self, ids: Sequence[JobId], now: datetime, states: frozenset[Any] | None = None) -> list[JobId]:
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
        return self.canceller.foreign_running(ids, now)

    def waiting_jobs(self, now: datetime, limit: int = 1000) -> list[Job]:
        return self.waiting.listing(limit)

    def complete_waiting(self, job_id: JobId, now: datetime, result: str | None = None) -> Job:
        return self.waiting.complete(job_id, now, result)

    def fail_waiting(self, job_id: JobId, now: datetime, error: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Job:
        return self.waiting.fail(job_id, now, error, max_attempts)

    # --- alert incidents (`alerts.py`) -------------------------------------------------------------
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

    # --- recurring schedules (`recurring.py`: resque-scheduler's persisted schedules) ---------------
    # --- history (`redis/history.py`: buckets expire by their retention, so prune has none to drop)
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

    def schedules(self, now: datetime) -> list[RecurringEntry]:
        return self.recurring.schedules(now)

    def save_schedule(self, schedule: Schedule, now: datetime) -> RecurringEntry:
        return self.recurring.save(schedule, now)

    def remove_schedule(self, name: str) -> bool:
        return self.recurring.remove(name)

    def fire_schedule(self, name: str, tick: datetime | None, new: NewJob, now: datetime) -> Job | None:
        return self.recurring.fire(name, tick, new, now)

    def schedule_leader(self, holder: str, ttl: float) -> bool:
        return self.recurring.leader(holder, ttl)

    def remove_waiting(self, ids: Sequence[JobId], now: datetime, cancelled_by: str | None = None) -> list[JobId]:
        return self.waiting.remove(ids, now, cancelled_by)

    def cancel_request(self, job_id: JobId) -> CancelRequest | None:
        return self.canceller.request_for(job_id)

    def settle_cancels(self, now: datetime, face: str, *, dry_run: bool = False) -> list[JobId]:
        return self.canceller.settle(now, face, dry_run)

    def _job_of(self, job_id: JobId) -> Job | None:
        try:
            return self.get(job_id, utcnow())
        except JobNotFound:
            return None

    def stats(self, now: datetime, max_run_time: float | None = None) -> Stats:
        return self.counter.stats(now, max_run_time)

    def error_groups(self, selection: JobFilter, now: datetime, limit: int = 100) -> list[ErrorGroup]:
        return self.counter.error_groups(selection, now, limit)

    def queues(self, now: datetime) -> list[QueueInfo]:
        return self.counter.queues(now)

    def queue_names(self, now: datetime) -> list[str]:
        """The known queues (the `queues` set and the paused ones), without counting anything."""
        return self.pauses.queue_names(Reader(self.server, now))

    @property
    def where(self) -> str:
        return self.safe_url

    def workers(self, now: datetime) -> list[WorkerInfo]:
        return self.registry.listed(now)

    def pause(self, queue: str, now: datetime) -> bool:
        return self.pauses.pause(queue, now)

    def resume(self, queue: str) -> bool:
        return self.pauses.resume(queue)

    def paused(self) -> list[str]:
        return self.pauses.paused()

    def record_audit(self, entry: AuditEntry, job_ids: Sequence[JobId]) -> None:
        self.audit_log.record(self.options.audit_redactor.audit_entry(entry), job_ids)

    def audit(self, limit: int = 100, job_id: JobId | None = None) -> list[AuditEntry]:
        return self.audit_log.read(limit, job_id)

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
