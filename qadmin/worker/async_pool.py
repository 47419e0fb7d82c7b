"""The async pool (`qadmin worker --pool async --concurrency N`): one process whose single asyncio
event loop runs up to N `async def` jobs at once.

`AsyncWorker` is the `Worker` of `loop.py` with another main loop: it claims as many jobs as it
has free slots, runs each `async def` job as a task of the loop (`async_running.py`), and
records each outcome as the worker loop does. Registration, the heartbeat and rescue threads,
pauses, the automatic prune, recycling and the progress lines are the worker loop's own.

The `WorkerSession` is not thread-safe: the loop calls it from its own thread only, between two
awaits (its calls are short blocking I/O, and every job of the loop waits for them). The
heartbeat and the rescues keep the threads the worker loop gives them (the protocol allows
that): a job that blocks the loop then does not make the worker look dead.

A plain (sync) job still runs, on the loop's thread, one at a time and within its time limit, as
in the worker loop (`Worker.perform`): every async job waits while it runs. The first of each
class says so in the log. A stop (SIGTERM, SIGINT) ends the claims; the running jobs finish and
are recorded, as the worker loop finishes its current job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

from qadmin import registry
from qadmin.backends.base import Backend
from qadmin.errors import BackendUnavailable, QadminError, ReadOnlyBackend, UsageError
from qadmin.job import Job, utcnow
from qadmin.text import plural, visible
from qadmin.worker.async_running import Interrupt, Outcome, run_async
from qadmin.worker.backoff import Backoff
from qadmin.worker.loop import Worker
from qadmin.worker.options import EXIT_RECYCLE, WorkerOptions
from qadmin.worker.running import job_max_run_time, runs_on_loop, time_limit

log = logging.getLogger("qadmin.worker")

#: seconds between looks at whether an operator cancelled one of the running async jobs
CANCEL_POLL = 1.0


@dataclass
class Running:
    """A job the loop runs: when it started, how it runs, and an operator's cancel of it."""

    job: Job
    started_at: datetime
    #: an `async def` job (a task of its own); else a plain one, run as the worker loop runs it
    on_loop: bool
    interrupt: Interrupt = field(default_factory=Interrupt)


class AsyncWorker(Worker):
    """Up to `concurrency` jobs at once on one event loop (module docstring)."""

    def __init__(
        self,
        backend: Backend,
        options: WorkerOptions | None = None,
        *,
        concurrency: int = 1,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        options = options or WorkerOptions()
        refuse_async_options(options)
        super().__init__(backend, options, clock=clock)
        self.concurrency = max(concurrency, 1)
        self._running: dict[asyncio.Task[None], Running] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        #: a job finished since the last claim: claim again at once, as the worker loop does
        self._slot_freed = False
        #: the pool claims no more (--count reached, or recycling): it ends when its jobs have
        self._done = False
        #: an error no wait mends (a read-only database), raised by the main loop
        self._fatal: BaseException | None = None
        #: class name -> whether its code is `async def`; the classes whose sync jobs were logged
        self._on_loop: dict[str, bool] = {}
        self._warned_sync: set[str] = set()

    # --- lifecycle ----------------------------------------------------------------------------
    def stop(self, _signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Claim no more; finish the running jobs, then stop (what SIGTERM and SIGINT do)."""
        if not self.stopping:
            log.info("stopping after the running jobs (%d)", len(self._running))
        self._stopping.set()
        self._wake_up()

    def _wake_up(self) -> None:
        """Wake the loop from any thread, or from a signal handler interrupting the loop's own."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def work(self) -> int:
        """Run until stopped, out of work (burst), or recycled. Returns the exit code."""
        log.info(
            "*** Starting job worker %s (async pool: up to %s at once)", self.name, plural(self.concurrency, "job")
        )
        backoff = Backoff(event=self._stopping)
        while not self._registered and not self.stopping:
            try:
                self.register()
            except BackendUnavailable as exc:
                log.warning("cannot register (%s); retrying in %.0fs", exc, backoff.delay)
                backoff.wait()
        try:
            if not self.stopping:
                asyncio.run(self._serve())
        finally:
            time_limit.restore()
            self._flush_quietly()
            self.unregister()
            self._close_session()
            self._report(final=True)
        return self.exit_code

    # --- the main loop ------------------------------------------------------------------------
    async def _serve(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self._claim_and_wait()
        finally:
            # whatever ended the loop, the jobs it started finish and are recorded
            while self._running:
                await asyncio.wait(list(self._running))
            self._loop = self._wake = None

    async def _claim_and_wait(self) -> None:
        errors = Backoff()  # its delays only: the loop waits without blocking the jobs
        claim_at = 0.0  # monotonic: when to claim again if no job frees a slot first
        next_poll = time.monotonic() + CANCEL_POLL
        while True:
            if self._fatal is not None:
                raise self._fatal
            if (self.stopping or self._done) and not self._running:
                return
            room = self._room()
            dry = False
            if room and (self._slot_freed or time.monotonic() >= claim_at):
                self._slot_freed = False
                try:
                    got = self._claim(room)
                    errors.reset()
                except ReadOnlyBackend:
                    raise
                except BackendUnavailable as exc:
                    log.warning("backend unavailable (%s); retrying in %.0fs", exc, errors.delay)
                    claim_at = time.monotonic() + errors.delay
                    errors.delay = min(errors.delay * 2, errors.cap)
                except QadminError as exc:
                    # a database error (a deadlock victim, a dropped table, ...) costs a pause, not the worker
                    log.error("backend error (%s); retrying in %.0fs", exc, errors.delay)
                    claim_at = time.monotonic() + errors.delay
                    errors.delay = min(errors.delay * 2, errors.cap)
                else:
                    dry = got < room
                    claim_at = time.monotonic() + (self.options.sleep if dry else 0.0)
            self._maybe_report()
            if not self.options.burst:  # a --burst run drains and leaves: pruning is for the workers that stay
                self._maybe_prune()
            if dry and not self._running:
                self._note_paused()
                if self.options.burst:
                    return
                self._flush_quietly()
            if self._running and time.monotonic() >= next_poll:
                self._poll_cancels()
                next_poll = time.monotonic() + CANCEL_POLL
            await self._idle(claim_at, next_poll)

    def _room(self) -> int:
        """Free slots, less what --count and --max-jobs-per-child leave; none while stopping."""
        if self.stopping or self._done:
            return 0
        room = self.concurrency - len(self._running)
        for limit in (self.options.count, self.options.max_jobs):
            if limit is not None:
                room = min(room, limit - self.processed - len(self._running))
        return max(room, 0)

    async def _idle(self, claim_at: float, next_poll: float) -> None:
        """Wait for a job to end, a stop, the next claim or the next look for cancels."""
        assert self._wake is not None
        until = next_poll if self._running else claim_at
        if self._room():
            until = min(until, claim_at)
        if self._wake.is_set():
            self._wake.clear()
            return
        if self._slot_freed and self._room():
            return
        try:
            await asyncio.wait_for(self._wake.wait(), max(until - time.monotonic(), 0.0))
        except TimeoutError:
            pass
        self._wake.clear()

    def _claim(self, room: int) -> int:
        # the jobs running here are skipped: delayed_job's claim hands a worker back its own locked
        # jobs (to resume after a crash), which would start a running job a second time
        running = [r.job.id for r in self._running.values()]
        jobs = self.session.claim(
            list(self.options.queues), self.clock(), self.options.max_run_time, self.can_run, room, self._skip + running
        )
        if self.stopping:  # the signal came during the claim: the jobs go back, untouched
            self.session.release(jobs)
            return 0
        for job in jobs:
            self._start(job)
        return len(jobs)

    def _start(self, job: Job) -> None:
        running = Running(job, self.clock(), self._is_async(job))
        coroutine = self._run_async(running) if running.on_loop else self._run_sync(job)
        self._running[asyncio.get_running_loop().create_task(coroutine)] = running
        self._show_current()

    def _is_async(self, job: Job) -> bool:
        on_loop = self._on_loop.get(job.class_name)
        if on_loop is None:
            try:
                on_loop = runs_on_loop(registry.resolve(job.class_name, self.options.imports))
            except Exception:  # noqa: BLE001 - the worker loop's run records what resolving says
                on_loop = False
            self._on_loop[job.class_name] = on_loop
        return on_loop

    def _ended(self) -> None:
        """A job's task ends (on the loop's thread): its slot is free."""
        task = asyncio.current_task()
        if task is not None:
            self._running.pop(task, None)
        self._slot_freed = True
        self._show_current()
        if self._wake is not None:
            self._wake.set()
        if self._done or self.stopping:
            return
        # recycling is judged after a job only, as the worker loop does
        if self._should_recycle():
            self.exit_code, self._done = EXIT_RECYCLE, True
        elif self.options.count is not None and self.processed >= self.options.count:
            self._done = True

    def _show_current(self) -> None:
        """The job the heartbeat names: the longest-running one."""
        first = next(iter(self._running.values()), None)
        self._current, self._current_started = (first.job, first.started_at) if first else (None, None)

    # --- one job ------------------------------------------------------------------------------
    async def _run_sync(self, job: Job) -> None:
        """A plain job: the worker loop's run, on the loop's thread (every other job waits)."""
        if job.class_name not in self._warned_sync:
            self._warned_sync.add(job.class_name)
            log.warning(
                "Job %s is not async: it runs on the event loop's thread, one at a time, and the loop's "
                "other jobs wait until it ends (make it `async def`)",
                visible(job.class_name),
            )
        try:
            self._guarded(job, lambda: self.perform(job))
        finally:
            self._ended()

    async def _run_async(self, running: Running) -> None:
        job = running.job
        started = time.monotonic()
        try:
            limit = job_max_run_time(job, self.options.max_run_time)
            outcome = await run_async(self._runner, job, limit, running.interrupt)
            runtime = time.monotonic() - started
            self._guarded(job, lambda: self._record(job, outcome, runtime))
        finally:
            self._ended()

    def _guarded(self, job: Job, run: Callable[[], None]) -> None:
        """A job's run and record: a backend error costs that job's outcome (its lock goes stale,
        and the job is rescued), never the other jobs; one that no wait mends stops the pool."""
        try:
            run()
        except ReadOnlyBackend as exc:
            self._fatal = exc
        except QadminError as exc:
            log.error("backend error (%s) recording job %s; its lock will go stale", exc, visible(job.id))
        except Exception as exc:  # noqa: BLE001 - a bug: the pool stops (as the worker loop would crash)
            self._fatal = exc

    def _record(self, job: Job, outcome: Outcome, runtime: float) -> None:
        """`Worker.perform`'s outcome, for a run that ended on the loop."""
        self._settle(job, runtime, outcome.error, outcome.cancelled, outcome.waiting, outcome.result)

    def _claim_ahead(self) -> int:
        """None: the pool claims for its free slots itself."""
        return 0

    def _poll_cancels(self) -> None:
        """Ask the backend whether an operator cancelled a running async job; interrupt those."""
        for running in list(self._running.values()):
            if not running.on_loop or running.interrupt.requested:
                continue
            job = running.job
            try:
                asked = self.session.cancel_requested(job)
            except QadminError as exc:
                log.warning("could not look for a cancel of job %s: %s", visible(job.id), exc)
                return
            if asked:
                log.info(
                    "Job %s (id=%s) cancelled by an operator: interrupting it", visible(job.class_name), visible(job.id)
                )
                running.interrupt.request()


def refuse_async_options(options: WorkerOptions) -> None:
    """What the async pool cannot honour is refused, never dropped."""
    if options.fork:
        raise UsageError("--fork does not go with --pool async: the async pool runs its jobs in its own process")
    if options.prefetch > 1:
        raise UsageError(
            "--prefetch does not go with --pool async: the pool claims as many jobs as it has free slots (--concurrency)"
        )
