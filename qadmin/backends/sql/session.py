"""`SqlWorkerSession`: one worker's verbs on a SQL database, and the state it keeps between them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from qadmin.backends.base import retention_cutoffs
from qadmin.backends.sql.bookkeeping import Bookkeeping
from qadmin.backends.sql.cancel import Cancelling
from qadmin.backends.sql.prune import Prune
from qadmin.backends.sql.rescue import Rescue
from qadmin.backends.sql.results import Results
from qadmin.backends.sql.state import Counters, HeldConnection, WorkerState
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.verbs import WorkerVerbs
from qadmin.backends.sql.waiting import Waiting
from qadmin.job import Job, JobId, WorkerInfo
from qadmin.model import Attempt, PruneReport


class SqlWorkerSession:
    """A `WorkerSession` (qadmin.backends.base) on SQL. It owns what a worker keeps between calls:
    a connection held checked out (a pool checkout costs more than a statement on SQLite, and
    on PostgreSQL it runs the worker's statements in autocommit), its throughput counts, written
    with an outcome at most once a second (`flush` writes them at once), and on SQLite how many
    spare candidates a claim decodes.

    Every success is written in its own transaction (with the next claim, by
    `complete_and_claim`): there is nothing to defer, so `defer_successes` is not taken here
    (`SqlBackend.session` says so). `close` flushes and gives the connection back; the session
    opens another when it is next used."""

    def __init__(
        self,
        worker: str,
        store: Store,
        verbs: WorkerVerbs,
        bookkeeping: Bookkeeping,
        rescuer: Rescue,
        *,
        pruner: Prune,
        results: Results,
        canceller: Cancelling,
        waiting: Waiting,
    ) -> None:
        self.worker = worker
        self._results = results
        self._verbs = verbs
        self._bookkeeping = bookkeeping
        self._rescuer = rescuer
        self._pruner = pruner
        self._canceller = canceller
        self._waiting = waiting
        self.state = WorkerState(HeldConnection(store, store.dialect.hot_engine), Counters(store))

    def claim(
        self,
        queues: Sequence[str],
        now: datetime,
        max_run_time: float,
        can_run: Callable[[Job], bool],
        limit: int = 1,
        skip_ids: Sequence[JobId] = (),
    ) -> list[Job]:
        return self._verbs.claim(self.state, queues, self.worker, now, max_run_time, can_run, limit, skip_ids)

    def complete(self, job: Job, now: datetime, runtime: float, result: str | None = None) -> None:
        self._verbs.complete(self.state, job, self.worker, now, runtime)
        if result is not None:  # a transaction of its own, only for jobs that returned something
            self._results.keep(job, now, result)

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
        claimed = self._verbs.complete_and_claim(
            self.state, job, self.worker, now, runtime, queues, max_run_time, can_run, limit, skip_ids
        )
        if result is not None:
            self._results.keep(job, now, result)
        return claimed

    def fail(
        self, job: Job, now: datetime, error: str, retry_at: datetime | None, runtime: float | None = None
    ) -> None:
        self._verbs.fail(self.state, job, self.worker, now, error, retry_at, Attempt.span(now, runtime))

    def refresh(self, job: Job, now: datetime) -> bool:
        return self._verbs.refresh(self.state, job, self.worker, now)

    def release(self, jobs: Sequence[Job]) -> None:
        self._verbs.release(self.state, jobs, self.worker)

    def register(self, info: WorkerInfo) -> None:
        self._bookkeeping.register_worker(info)

    def heartbeat(
        self, now: datetime, current_job: JobId | None, job_started_at: datetime | None, processed: int, failed: int
    ) -> None:
        self._bookkeeping.heartbeat(self.worker, now, current_job, job_started_at, processed, failed)

    def unregister(self) -> None:
        """Unregister, give back the locks still held, and write the counts held, at once."""
        self._bookkeeping.unregister_worker(self.worker, self.state.counters)

    def rescue(self, now: datetime) -> dict[str, list[JobId]]:
        return self._rescuer.rescue(self.worker, now)

    def cancel_requested(self, job: Job) -> bool:
        return self._canceller.requested(job)

    def cancelled(self, job: Job, now: datetime) -> bool:
        return self._canceller.cancelled(job, self.worker, now)

    def wait(self, job: Job, now: datetime, until: datetime) -> bool:
        return self._waiting.wait(self.state.counters, job, self.worker, now, until)

    def settle_cancels(self, now: datetime) -> list[JobId]:
        return self._canceller.settle(now, "worker")

    def expire_waiting(self, now: datetime) -> list[JobId]:
        return self._waiting.expire(now)

    def paused(self) -> list[str]:
        return self._bookkeeping.paused()

    def flush(self) -> None:
        """Give the held connection back (an idle worker keeps none) and write the counts held."""
        self.state.held.release()
        self.state.counters.flush()

    def close(self) -> None:
        self.flush()

    def prune_if_due(self, now: datetime) -> PruneReport | None:
        every = self._bookkeeping.options.prune_every
        if every is None or not self._pruner.take_turn(now, every):
            return None
        failed, finished, workers = retention_cutoffs(self._bookkeeping.options, now)
        report = self._pruner.prune(now, failed_before=failed, finished_before=finished, workers_before=workers)
        if report.total:  # an hourly prune that found nothing is not worth an audit entry
            self._bookkeeping.record_audit(report.audit_entry(now, self.worker, "worker"), report.failed_ids)
        return report
