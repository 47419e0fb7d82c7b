"""An operator's cancel of the job this worker runs (`qadmin cancel`): the heartbeat's thread asks
the session whether one was requested, and interrupts the job as its time limit would (SIGALRM
inline, the child killed with --fork); the loop then records the job as cancelled."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from qadmin.backends.base import WorkerSession
from qadmin.errors import QadminError
from qadmin.job import Job
from qadmin.text import visible
from qadmin.worker.backoff import record_outcome
from qadmin.worker.running import interrupt_for_cancel

log = logging.getLogger("qadmin.worker")


class CancelWatch:
    """The running job, and whether an operator cancelled it. `check` runs on the heartbeat's
    thread; `start`, `stop` and `record` on the worker loop's."""

    def __init__(self, session: WorkerSession, *, forked: bool) -> None:
        self.session = session
        self.forked = forked
        #: set once the running job's cancel was seen; `run_forked` polls it
        self.requested = threading.Event()
        self._job: Job | None = None

    def start(self, job: Job) -> None:
        self.requested.clear()
        self._job = job

    def stop(self) -> bool:
        """The job's code returned: whether it was cancelled meanwhile."""
        self._job = None
        return self.requested.is_set()

    def check(self) -> None:
        job = self._job
        if job is None:
            return
        if self.requested.is_set():
            # seen before the job's code armed its time limit (a `before` hook): again
            if not self.forked:
                interrupt_for_cancel()
            return
        try:
            asked = self.session.cancel_requested(job)
        except QadminError as exc:
            log.warning("could not look for a cancel of job %s: %s", visible(job.id), exc)
            return
        if asked and self._job is job:
            log.info(
                "Job %s (id=%s) cancelled by an operator: interrupting it", visible(job.class_name), visible(job.id)
            )
            self.requested.set()
            if not self.forked:
                interrupt_for_cancel()

    def record(self, job: Job, clock: Callable[[], datetime]) -> None:
        """The interrupted job, recorded as cancelled (never completed, failed or retried)."""
        done = [False]

        def write() -> None:
            done[0] = self.session.cancelled(job, clock())

        record_outcome(write)
        if done[0]:
            log.info("Job %s (id=%s) CANCELLED", visible(job.class_name), visible(job.id))
        else:
            log.warning(
                "Job %s (id=%s) was cancelled, but this worker no longer holds its lock: nothing recorded",
                visible(job.class_name),
                visible(job.id),
            )


def settle(session: WorkerSession, clock: Callable[[], datetime]) -> None:
    """Drop (and audit) the cancel requests of jobs that ended before their worker saw them, with
    the rescues: none is left for ever (`backends/cancel_requests.py`)."""
    try:
        settled = session.settle_cancels(clock())
    except QadminError as exc:
        log.warning("could not look for cancel requests of jobs that ended first: %s", exc)
        return
    if settled:
        log.info(
            "cancel of %s came after the job ended: %s",
            "a running job" if len(settled) == 1 else f"{len(settled)} running jobs",
            ", ".join(visible(str(i)) for i in settled),
        )
