"""The worker: claim -> run -> complete or fail with backoff, through any Backend.

delayed_job's semantics made safe (docs/compatibility.md §8.7): jobs are claimed
atomically by priority then run_at; a failure is retried after `attempts**4 + 5` seconds until
`max_attempts`, then kept as failed; a job over `max_run_time` is interrupted and failed; SIGTERM
or SIGINT finish the current job, then stop. Only jobs the worker can decode and whose class it
can resolve are ever claimed: everything else stays where it is for its own workers.
"""

from __future__ import annotations

import inspect
import logging
import os
import select
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from qadmin import events, registry
from qadmin.backends.base import Backend, WorkerSession
from qadmin.errors import BackendUnavailable, JobClassNotFound, QadminError, ReadOnlyBackend
from qadmin.job import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_RUN_TIME, Job, WorkerInfo, backoff_seconds, utcnow
from qadmin.text import plural, visible

log = logging.getLogger("qadmin.worker")

#: exit codes a worker process uses to talk to its supervisor
EXIT_DONE = 0
EXIT_RECYCLE = 3
#: the worker cannot work with this backend (an error no wait mends): not restarted
EXIT_CANNOT_START = 4
#: seconds between progress lines in the log
REPORT_INTERVAL = 10.0
#: unrunnable job ids a worker remembers so that it does not read them again on every claim
SKIP_MEMORY = 500
#: a prefetched job that waited longer than this (seconds, or 1% of max_run_time if less) has its
#: lock renewed before it runs; one that waited less runs with its time limit shortened by the
#: wait, so that its lock never expires while it runs
PREFETCH_RENEW_AFTER = 1.0


#: the verdict a forked job's process sends before it leaves
FORK_OK = b"+"
FORK_FAILED = b"-"


class JobTimeout(Exception):
    """execution expired"""


@dataclass
class WorkerOptions:
    queues: Sequence[str] = ("*",)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_run_time: float = DEFAULT_MAX_RUN_TIME
    sleep: float = 5.0
    burst: bool = False
    count: int | None = None
    fork: bool = False
    max_jobs: int | None = None
    max_memory_mb: float | None = None
    heartbeat_interval: float = 5.0
    name: str | None = None
    #: jobs locked per claim (1 = claim one job at a time); the rest wait, locked, in the worker
    prefetch: int = 1
    #: let successes wait (briefly) to be written with the worker's next call, where the backend
    #: can: fewer round trips, but a SIGKILL then reruns the jobs whose success was waiting
    defer_acks: bool = False
    #: modules or packages whose classes and functions this worker runs (besides registered names)
    imports: Sequence[str] = ()


def worker_name() -> str:
    from qadmin.backends.owners import worker_name as owner_name

    return owner_name()


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
        self._stopping = threading.Event()
        self._beat_stop = threading.Event()
        self._skip: list[Any] = []
        self._reported_blocked: set[str] = set()
        #: the paused queues among those served, as last logged
        self._paused_seen: list[str] = []
        self._current: Job | None = None
        self._current_started: datetime | None = None
        self._beat_thread: threading.Thread | None = None
        self._registered = False
        self._started = time.monotonic()
        self._last_report = time.monotonic()
        #: prefetched jobs, locked for this worker, with the monotonic time of their claim
        self._prefetched: deque[tuple[Job, float]] = deque()
        self._lock_age = 0.0

    # --- lifecycle ----------------------------------------------------------------------------
    def stop(self, *_: Any) -> None:
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
        from qadmin.backends.owners import HOSTNAME

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

    def unregister(self) -> None:
        if not self._registered:
            return
        self._registered = False
        # stop the heartbeat first: a beat after unregistering would bring the worker back
        self._beat_stop.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=10)
        try:
            self.session.unregister()
        except QadminError as exc:
            log.warning("could not unregister worker %s: %s", self.name, exc)

    def _beat_loop(self) -> None:
        while not self._beat_stop.wait(self.options.heartbeat_interval):
            self.beat()

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

    def work(self) -> int:
        """Run until stopped, out of work (burst), or recycled. Returns the exit code."""
        log.info("*** Starting job worker %s", self.name)
        backoff = _Backoff(event=self._stopping)
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
            _time_limit.restore()
            self._release_prefetched()
            self._flush_quietly()
            self.unregister()
            self._close_session()
            self._report(final=True)
        return self.exit_code

    # --- one job ------------------------------------------------------------------------------
    def _note_paused(self) -> None:
        """Say which served queues are paused when that changes (a burst worker says it before
        it leaves): an idle worker with work waiting in a paused queue is never silent."""
        try:
            paused = self.session.paused()
        except QadminError as exc:
            log.debug("cannot read the paused queues: %s", exc)
            return
        served = set(self.options.queues)
        shown = sorted(q for q in paused if "*" in served or q in served or q == "*")
        if shown == self._paused_seen:
            return
        if shown:
            log.warning(
                "paused %s not served until resumed (`qadmin resume QUEUE`): %s",
                "queue" if len(shown) == 1 else "queues",
                ", ".join(visible(q) if q else "''" for q in shown),
            )
        else:
            log.info("no served queue is paused any more")
        self._paused_seen = shown

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
        started = time.monotonic()
        try:
            error = self._execute(job)
        finally:
            self._current = None
        runtime = time.monotonic() - started
        if error is None:
            self._complete(job, runtime)
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
        self.failed += 1
        attempts = job.attempts + 1
        max_attempts = job.max_attempts or self.options.max_attempts
        now = self.clock()
        retry_at = None if attempts >= max_attempts else now + timedelta(seconds=backoff_seconds(attempts))
        self._finish(lambda: self.session.fail(job, now, error, retry_at))
        if retry_at is None:
            log.info(
                "Job %s (id=%s) FAILED permanently after %s: %s",
                visible(job.class_name),
                visible(job.id),
                plural(attempts, "attempt"),
                visible(error.split("\n", 1)[0]),
            )
            self._hook(job, "failure")
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

        self._finish(check)
        return held[0]

    def _complete(self, job: Job, runtime: float) -> None:
        """Record a success; where the backend can, claim the next jobs in the same round trip
        (`complete_and_claim`), which the next `_next_job` then takes from the prefetched ones."""
        wanted = self._claim_ahead()
        if not wanted:
            self._finish(lambda: self.session.complete(job, self.clock(), runtime))
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
            )

        self._finish(write)
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

    def _finish(self, write: Callable[[], None]) -> None:
        """Record an outcome, riding out a short backend outage (the job already ran)."""
        backoff = _Backoff(first=0.5, cap=10.0)  # not cut short by a stop: the job already ran
        for attempt in range(8):
            try:
                write()
                return
            except BackendUnavailable as exc:
                if attempt == 7:
                    log.error("could not record a job outcome, its lock will go stale and it will run again: %s", exc)
                    return
                log.warning("backend unavailable (%s); retrying to record the outcome in %.1fs", exc, backoff.delay)
                backoff.wait()

    def _execute(self, job: Job) -> str | None:
        """Run the job; None on success, else the error text (message line + traceback)."""
        if self.options.fork:
            return self._execute_forked(job)
        return self._execute_here(job)

    def _execute_here(self, job: Job) -> str | None:
        # the hooks of one run see the same job object, as delayed_job's do
        instance = None
        try:
            target = registry.resolve(job.class_name, self.options.imports)
            instance = _instance_for(target)
            self._hook(job, "before", instance)
            events.emit("before_perform", job)
            with _time_limit(self._run_limit(job)):
                _call(target, instance, job)
            self._hook(job, "success", instance)
            events.emit("after_perform", job)
            return None
        except JobTimeout as exc:
            error = (
                f"JobTimeout: execution expired (max run time {job_max_run_time(job, self.options.max_run_time):g}s)\n"
            )
            self._hook(job, "error", instance, exc)
            return error
        except BaseException as exc:  # noqa: BLE001 - a job's exception is data, never a worker crash
            # sys.exit() in a job ends that job, not the worker: it is the job's failure
            if _is_interrupt(exc):
                raise
            self._hook(job, "error", instance, exc)
            return format_error(exc)
        finally:
            self._hook(job, "after", instance)

    def _execute_forked(self, job: Job) -> str | None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: run the job and report through the pipe, never touch the backend
            os.close(read_fd)
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                error = self._execute_here(job)
                # an explicit verdict: a child that leaves without one (os._exit) did not finish
                _write_all(write_fd, FORK_OK if error is None else FORK_FAILED + error.encode("utf-8", "replace"))
            except BaseException:  # noqa: BLE001 - report anything, then leave without cleanup
                _write_all(write_fd, FORK_FAILED + traceback.format_exc().encode("utf-8", "replace"))
                code = 1
            finally:
                os._exit(code)
        os.close(write_fd)
        limit = job_max_run_time(job, self.options.max_run_time)
        deadline = time.monotonic() + self._run_limit(job)
        chunks: list[bytes] = []
        status = None
        open_pipe = True
        # drain the pipe while waiting: a child whose report fills the pipe buffer would
        # otherwise block on write and never exit
        while status is None:
            if open_pipe:
                ready, _, _ = select.select([read_fd], [], [], 0.05)
                if ready:
                    data = os.read(read_fd, 65536)
                    if data:
                        chunks.append(data)
                        continue
                    open_pipe = False
            else:
                time.sleep(0.005)
            waited, st = os.waitpid(pid, os.WNOHANG)
            if waited:
                status = st
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(read_fd)
                return f"JobTimeout: execution expired (max run time {limit:g}s)\n"
        while open_pipe:
            data = os.read(read_fd, 65536)
            if not data:
                break
            chunks.append(data)
        os.close(read_fd)
        report = b"".join(chunks)
        if os.WIFSIGNALED(status):
            return f"DirtyExit: Child process received unhandled signal {os.WTERMSIG(status)}\n"
        if report.startswith(FORK_FAILED):
            return report[len(FORK_FAILED) :].decode("utf-8", "replace")
        if report == FORK_OK and os.WEXITSTATUS(status) == 0:
            return None
        return (
            f"DirtyExit: the job's process exited with status {os.WEXITSTATUS(status)} before the job "
            "finished (os._exit?)\n"
        )

    def _hook(self, job: Job, name: str, instance: Any = None, *extra: Any) -> None:
        """delayed_job's job hooks: before, after, success, error, failure (methods of the job class)."""
        try:
            target = instance
            if target is None:
                target = _instance_for(registry.resolve(job.class_name, self.options.imports))
        except Exception:  # noqa: BLE001 - no class, no hooks
            return
        hook = getattr(target, name, None)
        if hook is None or not callable(hook):
            return
        try:
            _settle(hook(job, *extra))
        except BaseException as exc:  # noqa: BLE001 - a failing hook is logged, the job's outcome stands
            if _is_interrupt(exc):
                raise
            log.error("%s hook of %s failed: %s", name, visible(job.class_name), visible(format_error(exc), lines=True))

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
        try:
            self.session.flush()
        except QadminError as exc:
            log.warning("could not write counters: %s", exc)

    def _close_session(self) -> None:
        try:
            self.session.close()
        except QadminError as exc:
            log.warning("could not close the worker's session: %s", exc)

    def _maybe_report(self) -> None:
        if time.monotonic() - self._last_report >= REPORT_INTERVAL:
            self._report()

    def _report(self, final: bool = False) -> None:
        self._last_report = time.monotonic()
        elapsed = max(time.monotonic() - self._started, 1e-9)
        if self.processed or final:
            log.info("%d jobs processed at %.1f j/s, %d failed", self.processed, self.processed / elapsed, self.failed)


def wait_for_backend(backend: Backend) -> bool:
    """Check the backend until it answers, saying so and backing off while it cannot be reached
    (a worker host often boots before its database). Other errors (a missing table, ...) are
    raised. False if SIGTERM or SIGINT came first."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    backoff = _Backoff(event=stop)
    try:
        while not stop.is_set():
            try:
                backend.check()
                if backoff.delay != backoff.first:
                    log.info("backend reachable: starting")
                return True
            except BackendUnavailable as exc:
                log.warning("%s; waiting for it (next try in %.0fs)", exc, backoff.delay)
                backoff.wait()
        log.info("stopped while waiting for the backend")
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- running a job's code ---------------------------------------------------------------------
class _Backoff:
    """Waits that double after each failed attempt, up to `cap`; `reset()` after a success. With
    `event`, a wait ends early when it is set (the worker is stopping)."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, event: threading.Event | None = None) -> None:
        self.first, self.cap, self.event = first, cap, event
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def wait(self) -> None:
        if self.event is None:
            time.sleep(self.delay)
        else:
            self.event.wait(self.delay)
        self.delay = min(self.delay * 2, self.cap)


def _perform_is_static(target: Any) -> bool:
    raw = inspect.getattr_static(target, "perform", None)
    return isinstance(raw, (staticmethod, classmethod))


def _instance_for(target: Any) -> Any:
    """Classes are instantiated (delayed_job style) unless `perform` is a static/class method (Resque
    style); plain callables are used as they are."""
    if inspect.isclass(target):
        return target if _perform_is_static(target) else target()
    return target


def _call(target: Any, instance: Any, job: Job) -> Any:
    if inspect.isclass(target):
        return _settle(instance.perform(*job.args, **job.kwargs))
    return _settle(target(*job.args, **job.kwargs))


def _settle(result: Any) -> Any:
    """Run what calling a job gave back when its body has not run yet: an `async def` job's
    coroutine runs to completion on an event loop of its own (within the job's time limit, which
    interrupts the loop as it does any code). A generator's body would never run: refused."""
    if inspect.isawaitable(result):
        import asyncio

        async def awaited() -> Any:
            return await result

        try:
            return asyncio.run(awaited())
        finally:
            if inspect.iscoroutine(result) and result.cr_frame is not None and not result.cr_running:
                result.close()  # never started (asyncio.run refused): no "never awaited" warning
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        raise TypeError(
            f"the job returned {type(result).__name__} {getattr(result, '__qualname__', '')}: its "
            "body never runs (a job function must not yield)"
        )
    return result


def _is_interrupt(exc: BaseException) -> bool:
    """A KeyboardInterrupt that may be a real Ctrl-C: Python's own SIGINT handler is in place (the
    CLI worker and a forked job replace it, so there one can only come from the job's code)."""
    return isinstance(exc, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def job_max_run_time(job: Job, default: float) -> float:
    own = job.meta.get("max_run_time") if isinstance(job.meta, dict) else None
    if isinstance(own, (int, float)) and own > 0:
        return min(float(own), default)
    return default


class _time_limit:
    """Interrupt the job with JobTimeout after `seconds` (main thread only: SIGALRM).

    The SIGALRM handler is installed by the first job and stays until the worker stops
    (`restore`): installing and restoring it around every job would cost two signal() calls a
    job. It raises only while a limit is armed (a stray alarm between jobs is ignored), and a
    job that installs a handler of its own gets qadmin's back before the next job."""

    armed = False
    #: the limit passed while armed (set by the alarm, whether or not its exception got through)
    expired = False
    #: the handler qadmin's last replaced (restored when the worker stops)
    previous: Any = None
    installed = False

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = seconds > 0 and threading.current_thread() is threading.main_thread()

    def __enter__(self) -> None:
        if self.active:
            if _getsignal(signal.SIGALRM) is not _expire:
                _time_limit.previous = signal.signal(signal.SIGALRM, _expire)
                _time_limit.installed = True
            _time_limit.armed, _time_limit.expired = True, False
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, exc_type: Any, *_: object) -> None:
        if self.active:
            _time_limit.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            # the JobTimeout was caught on its way (by the job, or by an event loop's callback
            # runner): the job still ran out of time, and is not a success
            if _time_limit.expired and exc_type is None:
                raise JobTimeout("execution expired")

    @staticmethod
    def restore() -> None:
        """Put back the SIGALRM handler qadmin's replaced (main thread only, as signal() is)."""
        if _time_limit.installed and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGALRM, _time_limit.previous)
            _time_limit.previous, _time_limit.installed = None, False


try:  # the handler as set, without `signal.getsignal`'s conversion to an enum (an exception a call)
    from _signal import getsignal as _getsignal
except ImportError:  # pragma: no cover - not CPython
    _getsignal = signal.getsignal


def _expire(*_: Any) -> None:
    if _time_limit.armed:
        _time_limit.armed, _time_limit.expired = False, True
        raise JobTimeout("execution expired")


def format_error(exc: BaseException) -> str:
    """`Class: message` on the first line (what error groups key on), then the traceback."""
    message = str(exc).split("\n", 1)[0]
    if isinstance(exc, SystemExit):
        code = exc.code
        status = 0 if code is None else code if isinstance(code, int) else 1
        message = f"the job called exit: status {status}" + (
            "" if code is None or isinstance(code, int) else f" ({message})"
        )
    head = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return head + "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def current_rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return None
