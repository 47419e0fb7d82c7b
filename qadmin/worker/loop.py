"""The worker loop: claim -> run -> complete or fail, through the backend's `WorkerSession`.

Besides the loop itself: prefetched jobs (claimed ahead, their locks kept fresh), the worker's
registration and heartbeat, recycling, and its progress lines in the log.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from functools import partial
from types import FrameType

from qadmin import events, registry
from qadmin.backends.base import Backend, WorkerSession
from qadmin.backends.owners import HOSTNAME, worker_name
from qadmin.errors import BackendUnavailable, JobClassNotFound, QadminError, ReadOnlyBackend
from qadmin.job import Job, JobId, WorkerInfo, utcnow
from qadmin.text import plural, visible
from qadmin.waiting import Waiting
from qadmin.worker.backoff import Backoff, record_outcome, retry_time
from qadmin.worker.cancelling import CancelWatch, settle
from qadmin.worker.forked import run_forked
from qadmin.worker.history import HistoryRecorder
from qadmin.worker.memory import current_rss_mb
from qadmin.worker.options import EXIT_DONE, EXIT_RECYCLE, WorkerOptions
from qadmin.worker.paused import PausedNotice
from qadmin.worker.running import JobRunner, job_max_run_time, time_limit
from qadmin.worker.waiting import expire, park

#: the worker's modules share one logger: its name is what operators filter on
log = logging.getLogger("qadmin.worker")

#: seconds between progress lines in the log
REPORT_INTERVAL = 10.0
#: unrunnable job ids a worker remembers so that it does not read them again on every claim
SKIP_MEMORY = 500
#: a prefetched job that waited longer than this (seconds, or 1% of max_run_time if less) has its
#: lock renewed before it runs; one that waited less runs with its time limit shortened by the
#: wait, so that its lock never expires while it runs
PREFETCH_RENEW_AFTER = 1.0
#: seconds between a worker's looks at whether the backend is due a prune (the backend's own
#: marker decides which worker prunes, at most once per `prune_every`)
PRUNE_CHECK_INTERVAL = 60.0


class Worker:
    def __init__(
        self, backend: Backend, options: WorkerOptions | None = None, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.backend = backend
        self.options = options or WorkerOptions()
        self.clock = clock
        self.name = self.options.name or worker_name()
        #: this worker's own verbs and state; the backend object keeps none of it
        self.session: WorkerSession = backend.session(self.name, defer_successes=self.options.defer_acks)
        self.processed = 0
        self.failed = 0
        self.exit_code = EXIT_DONE
        self._runner = JobRunner(self.options.imports, self.options.max_run_time)
        #: runs a job's code within a time limit: here, or in a child process with --fork
        #: an operator's cancel of the running job, seen by the heartbeat's thread
        self._cancels = CancelWatch(self.session, forked=self.options.fork)
        self._run_job: Callable[[Job, float], str | None] = (
            partial(run_forked, self._runner, cancel=self._cancels.requested) if self.options.fork else self._runner.run
        )
        self._stopping = threading.Event()
        self._beat_stop = threading.Event()
        self._skip: list[JobId] = []
        self._reported_blocked: set[str] = set()
        #: the paused queues among those served, as last logged
        self._paused_notice = PausedNotice()
        self._current: Job | None = None
        self._current_started: datetime | None = None
        self._beat_thread: threading.Thread | None = None
        self._rescue_thread: threading.Thread | None = None
        self._registered = False
        self._started = time.monotonic()
        self._last_report = time.monotonic()
        self._next_prune_check = time.monotonic()
        #: prefetched jobs, locked for this worker, with the monotonic time of their claim
        self._prefetched: deque[tuple[Job, float]] = deque()
        self._lock_age = 0.0
        o = self.options
        self.history = HistoryRecorder(backend, o.queues, o.max_attempts, enabled=o.record_history, clock=clock)

    # --- lifecycle ----------------------------------------------------------------------------
    def stop(self, _signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Finish the current job, then stop (what SIGTERM and SIGINT do)."""
        if not self._stopping.is_set():
            log.info("stopping after the current job")
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def register(self) -> None:
        now = self.clock()
        self.session.register(
            WorkerInfo(
                name=self.name,
                host=HOSTNAME,
                pid=os.getpid(),
                queues=list(self.options.queues),
                started_at=now,
                heartbeat_at=now,
            )
        )
        self._registered = True
        self._beat_thread = threading.Thread(target=self._beat_loop, name="qadmin-heartbeat", daemon=True)
        self._beat_thread.start()
        if self.options.rescue_interval > 0:
            # a thread of its own: a rescue waiting on the database never delays a heartbeat (a
            # worker that missed its beats would look dead to the others), nor a long job a rescue
            self._rescue_thread = threading.Thread(target=self._rescue_loop, name="qadmin-rescue", daemon=True)
            self._rescue_thread.start()

    def unregister(self) -> None:
        if not self._registered:
            return
        self._registered = False
        # stop the heartbeat first: a beat after unregistering would bring the worker back
        self._beat_stop.set()
        for thread in (self._beat_thread, self._rescue_thread):
            if thread is not None:
                thread.join(timeout=10)
        try:
            self.session.unregister()
        except QadminError as exc:
            log.warning("could not unregister worker %s: %s", self.name, exc)

    def _beat_loop(self) -> None:
        while not self._beat_stop.wait(self.options.heartbeat_interval):
            self.beat()

    def _rescue_loop(self) -> None:
        """Rescues: one at start-up, then every `rescue_interval`, until the worker stops."""
        self.rescue()
        while not self._beat_stop.wait(self.options.rescue_interval):
            self.rescue()

    def beat(self) -> None:
        current = self._current
        try:
            self.session.heartbeat(
                self.clock(),
                current.id if current else None,
                self._current_started,
                self.processed,
                self.failed,
            )
        except QadminError as exc:
            log.warning("heartbeat failed: %s", exc)
        self._cancels.check()

    def rescue(self) -> None:
        """Give back the jobs of dead qadmin workers; a failure is logged, the worker goes on."""
        try:
            rescued = self.session.rescue(self.clock())
        except QadminError as exc:
            log.warning("could not look for jobs of dead workers: %s", exc)
            return
        except Exception:  # noqa: BLE001 - a bug here must not end the rescues for good, silently
            log.exception("could not look for jobs of dead workers")
            return
        for holder, ids in rescued.items():
            log.warning(
                "rescued %s of dead worker %s: %s",
                plural(len(ids), "job"),
                visible(holder),
                ", ".join(visible(str(i)) for i in ids),
            )
        expire(self.session, self.clock)
        settle(self.session, self.clock)

    def work(self) -> int:
        """Run until stopped, out of work (burst), or recycled. Returns the exit code."""
        log.info("*** Starting job worker %s", self.name)
        backoff = Backoff(event=self._stopping)
        # the database may go away between the start-up check and here: wait for it, as the
        # main loop does, rather than die
        while not self._registered and not self.stopping:
            try:
                self.register()
            except BackendUnavailable as exc:
                log.warning("cannot register (%s); retrying in %.0fs", exc, backoff.delay)
                backoff.wait()
            # anything else (a read-only database, a missing table) no wait will mend: raised
        backoff.reset()
        try:
            while not self.stopping:
                try:
                    ran = self.run_once()
                    backoff.reset()
                except BackendUnavailable as exc:
                    log.warning("backend unavailable (%s); retrying in %.0fs", exc, backoff.delay)
                    backoff.wait()
                    continue
                except ReadOnlyBackend:
                    raise
                except QadminError as exc:
                    # a database error (a deadlock victim, a dropped table, ...) costs a pause,
                    # not the worker: what it held is retried or taken back as a stale lock
                    log.error("backend error (%s); retrying in %.0fs", exc, backoff.delay)
                    backoff.wait()
                    continue
                self._maybe_report()
                # a --burst run drains and leaves: pruning is for the workers that stay
                if not self.options.burst:
                    self._maybe_prune()
                if not ran:
                    self._note_paused()
                    if self.options.burst:
                        break
                    self._flush_quietly()
                    self._stopping.wait(self.options.sleep)
                    continue
                # recycling is judged after a job only: an idle process has nothing to shed,
                # and a fresh one over the limit would otherwise be replaced forever
                if self._should_recycle():
                    self.exit_code = EXIT_RECYCLE
                    break
                if self.options.count is not None and self.processed >= self.options.count:
                    break
        finally:
            time_limit.restore()
            self._release_prefetched()
            self._flush_quietly()
            self.unregister()
            self._close_session()
            self._report(final=True)
        return self.exit_code

    # --- one job ------------------------------------------------------------------------------
    def _note_paused(self) -> None:
        self._paused_notice.note(self.session, self.options.queues)

    def can_run(self, job: Job) -> bool:
        if not job.decodable or job.format not in ("qadmin", "resque", "php-resque"):
            return False
        try:
            registry.resolve(job.class_name, self.options.imports)
        except JobClassNotFound as exc:
            self._remember_unrunnable(job, str(exc))
            return False
        return True

    def _remember_unrunnable(self, job: Job, reason: str) -> None:
        self._skip.append(job.id)
        del self._skip[:-SKIP_MEMORY]
        key = f"{job.class_name}"
        if key not in self._reported_blocked:
            self._reported_blocked.add(key)
            log.warning("leaving job %s in place: %s", visible(job.id), visible(reason))

    def run_once(self) -> bool:
        """Claim and run at most one job. True if a job was run."""
        job = self._next_job()
        if job is None:
            return False
        if self.stopping:
            self.session.release([job])
            self._release_prefetched()
            return False
        self.perform(job)
        return True

    def _next_job(self) -> Job | None:
        """A prefetched job (its lock still ours), else a freshly claimed one."""
        self._lock_age = 0.0
        while self._prefetched:
            job, claimed = self._prefetched.popleft()
            waited = time.monotonic() - claimed
            if waited <= min(PREFETCH_RENEW_AFTER, self.options.max_run_time / 100):
                self._lock_age = waited
                return job
            try:
                renewed = self.session.refresh(job, self.clock())
            except QadminError as exc:
                log.warning("could not renew the lock of prefetched job %s (%s); leaving it", visible(job.id), exc)
                continue
            if renewed:
                return job
            log.warning("prefetched job %s is no longer locked by this worker; leaving it", visible(job.id))
        jobs = self.session.claim(
            list(self.options.queues),
            self.clock(),
            self.options.max_run_time,
            self.can_run,
            max(self.options.prefetch, 1),
            list(self._skip),
        )
        claimed = time.monotonic()
        self._prefetched.extend((j, claimed) for j in jobs[1:])
        return jobs[0] if jobs else None

    def _release_prefetched(self) -> None:
        """Give back the prefetched jobs not run (the worker is stopping)."""
        if not self._prefetched:
            return
        jobs = [job for job, _ in self._prefetched]
        self._prefetched.clear()
        try:
            self.session.release(jobs)
        except QadminError as exc:  # they stay locked by this worker: stale locks, recovered as any
            log.warning("could not release %d prefetched jobs: %s", len(jobs), exc)

    def _run_limit(self, job: Job) -> float:
        return max(job_max_run_time(job, self.options.max_run_time) - self._lock_age, 0.001)

    def perform(self, job: Job) -> None:
        self._current, self._current_started = job, self.clock()
        self._cancels.start(job)
        started = time.monotonic()
        try:
            error = self._run_job(job, self._run_limit(job))
        finally:
            self._current = None
            cancelled = self._cancels.stop()
        runtime = time.monotonic() - started
        # a job done before the cancel got through stands
        self._settle(
            job, runtime, error, error is not None and cancelled, self._runner.last_waiting, self._runner.last_result
        )

    def _settle(
        self, job: Job, runtime: float, error: str | None, cancelled: bool, waiting: Waiting | None, result: str | None
    ) -> None:
        """Record how a run ended (the process loop's `perform` and the async pool alike): cancelled,
        parked to wait for its service, completed, or failed while this worker still holds it."""
        self.history.settled(job, runtime, error, cancelled, waiting)
        if cancelled:
            self.processed += 1
            self._cancels.record(job, self.clock)
            return
        if error is None and waiting is not None:
            park(self.session, job, waiting, self.clock)
            return
        if error is None:
            self._complete(job, runtime, result)
            self.processed += 1
            if log.isEnabledFor(logging.DEBUG):  # the hot path: no escaping for a line nobody reads
                log.debug("Job %s (id=%s) COMPLETED after %.4fs", visible(job.class_name), visible(job.id), runtime)
            return
        self.processed += 1
        if not self._still_held(job):
            log.warning(
                "Job %s (id=%s) failed (%s), but this worker no longer holds its lock (unlocked, or taken by "
                "another worker after its max run time): its outcome is left to the lock's holder",
                visible(job.class_name),
                visible(job.id),
                visible(error.split("\n", 1)[0]),
            )
            return
        self._fail(job, error, runtime)

    def _fail(self, job: Job, error: str, runtime: float | None = None) -> None:
        """Record a failure: retried after delayed_job's backoff, or failed for good."""
        self.failed += 1
        attempts = job.attempts + 1
        now = self.clock()
        retry_at = retry_time(attempts, job.max_attempts or self.options.max_attempts, now)
        record_outcome(lambda: self.session.fail(job, now, error, retry_at, runtime))
        if retry_at is None:
            log.info(
                "Job %s (id=%s) FAILED permanently after %s: %s",
                visible(job.class_name),
                visible(job.id),
                plural(attempts, "attempt"),
                visible(error.split("\n", 1)[0]),
            )
            self._runner.hook(job, "failure")
            events.emit("on_failure", job, error)
        else:
            log.info(
                "Job %s (id=%s) FAILED (%s so far; retried at %s) with %s",
                visible(job.class_name),
                visible(job.id),
                plural(attempts, "attempt"),
                retry_at.isoformat(timespec="seconds"),
                visible(error.split("\n", 1)[0]),
            )

    def _still_held(self, job: Job) -> bool:
        """Whether this worker still holds the job's lock (renewing it): a failure is logged and
        counted only when it can be recorded. True when the backend cannot be reached to tell."""
        held = [True]

        def check() -> None:
            held[0] = self.session.refresh(job, self.clock())

        record_outcome(check)
        return held[0]

    def _complete(self, job: Job, runtime: float, result: str | None = None) -> None:
        """Record a success; where the backend can, claim the next jobs in the same round trip
        (`complete_and_claim`), which the next `_next_job` then takes from the prefetched ones."""
        wanted = self._claim_ahead()
        if not wanted:
            record_outcome(lambda: self.session.complete(job, self.clock(), runtime, result))
            return
        claimed: list[Job] = []

        def write() -> None:
            claimed[:] = self.session.complete_and_claim(
                job,
                self.clock(),
                runtime,
                list(self.options.queues),
                self.options.max_run_time,
                self.can_run,
                wanted,
                list(self._skip),
                result,
            )

        record_outcome(write)
        at = time.monotonic()
        self._prefetched.extend((j, at) for j in claimed)

    def _claim_ahead(self) -> int:
        """How many jobs to claim along with an outcome: none while prefetched jobs wait or when
        this job is the worker's last."""
        if self._prefetched or self.stopping:
            return 0
        done = self.processed + 1
        for limit in (self.options.count, self.options.max_jobs):
            if limit is not None and done >= limit:
                return 0
        return max(self.options.prefetch, 1)

    # --- housekeeping -------------------------------------------------------------------------
    def _should_recycle(self) -> bool:
        if self.options.max_jobs is not None and self.processed >= self.options.max_jobs:
            log.info("recycling after %d jobs", self.processed)
            return True
        if self.options.max_memory_mb is not None:
            rss = current_rss_mb()
            if rss is not None and rss > self.options.max_memory_mb:
                log.info("recycling at %.1f MB resident (limit %.0f MB)", rss, self.options.max_memory_mb)
                return True
        return False

    def _flush_quietly(self) -> None:
        self.history.flush()
        try:
            self.session.flush()
        except QadminError as exc:
            log.warning("could not write counters: %s", exc)

    def _close_session(self) -> None:
        try:
            self.session.close()
        except QadminError as exc:
            log.warning("could not close the worker's session: %s", exc)

    def _maybe_prune(self) -> None:
        """Prune by the retention settings when the backend says it is this worker's turn; a
        prune that fails is logged, and the worker goes on."""
        at = time.monotonic()
        if at < self._next_prune_check:
            return
        self._next_prune_check = at + PRUNE_CHECK_INTERVAL
        try:
            report = self.session.prune_if_due(self.clock())
        except Exception as exc:  # noqa: BLE001 - housekeeping must never stop the worker
            log.warning("automatic prune failed: %s", exc)
            return
        if report is not None and report.total:
            log.info(
                "pruned %s, %s and %s",
                plural(report.failed, "failed job"),
                plural(report.finished, "finished record"),
                plural(report.workers, "dead worker"),
            )

    def _maybe_report(self) -> None:
        if time.monotonic() - self._last_report >= REPORT_INTERVAL:
            self._report()

    def _report(self, final: bool = False) -> None:
        self._last_report = time.monotonic()
        elapsed = max(time.monotonic() - self._started, 1e-9)
        if self.processed or final:
            log.info("%d jobs processed at %.1f j/s, %d failed", self.processed, self.processed / elapsed, self.failed)
