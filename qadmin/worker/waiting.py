"""The worker's side of waiting jobs (`qadmin.Waiting`): a job that handed its work to an external
service is parked (`WorkerSession.wait`), and the waiting jobs past their deadline are failed by
live workers, with the rescues."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from qadmin.backends.base import WorkerSession
from qadmin.errors import QadminError
from qadmin.job import Job
from qadmin.text import plural, visible
from qadmin.waiting import Waiting
from qadmin.worker.backoff import log, record_outcome


def park(session: WorkerSession, job: Job, waiting: Waiting, clock: Callable[[], datetime]) -> None:
    """Record the job as waiting until `waiting.timeout` from now; its lock goes with it."""
    now = clock()
    until = waiting.deadline(now)
    parked = [False]

    def write() -> None:
        parked[0] = session.wait(job, now, until)

    record_outcome(write)
    if parked[0]:
        log.info(
            "Job %s (id=%s) WAITING for an external service until %s",
            visible(job.class_name),
            visible(job.id),
            until.isoformat(timespec="seconds"),
        )
    else:
        log.warning("Job %s (id=%s) asked to wait, but this worker no longer holds it", visible(job.class_name), job.id)


def expire(session: WorkerSession, clock: Callable[[], datetime]) -> None:
    """Fail the waiting jobs whose service did not report back in time; a failure is logged."""
    try:
        expired = session.expire_waiting(clock())
    except QadminError as exc:
        log.warning("could not look for waiting jobs past their deadline: %s", exc)
        return
    if expired:
        log.warning(
            "%s past its deadline failed: %s",
            plural(len(expired), "waiting job"),
            ", ".join(visible(str(i)) for i in expired),
        )
