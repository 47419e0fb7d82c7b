"""Cancel requests no worker will act on: an operator cancelled a running job (`Backend.cancel`),
and the job ended that run before its worker saw the request (it finished, failed, started
waiting for its service, was given back). Such a request is settled: dropped from where requests
are kept (SQL's `qadmin_cancels`, Redis' `qadmin:cancels`), so none stays for ever, and recorded
in the audit log against the job (verb `cancel_missed`, the requester as its actor, what the job
did first in the details), which is where every face reads "it finished first" from afterwards.

Settling is not done by the worker as it records an outcome: that would cost every job a write
on the hot path for a request that almost never exists. Live workers settle with their rescues
(`WorkerSession.settle_cancels`, every `rescue_interval`), and `Backend.prune` settles what is
left; until then a face reads the open request itself (`Backend.cancel_request`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from qadmin.job import AuditEntry, Job, JobId, JobState, iso

#: the audit verb of a settled request
MISSED = "cancel_missed"
#: open requests one settling reads at most (there are a handful: one per cancelled running job)
SETTLE_LIMIT = 1000


@dataclass(frozen=True)
class CancelRequest:
    """An operator's request that the run of a job, running when it was made, be cancelled."""

    job_id: JobId
    requested_at: datetime | None
    actor: str


def meant_for(request: CancelRequest, job: Job | None) -> bool:
    """Whether the request still stands: its job runs the run it was made for (locked since
    before the request). A later run of the job (it failed, was retried) is not the one asked."""
    if job is None or job.state is not JobState.LOCKED:
        return False
    return job.locked_at is None or request.requested_at is None or job.locked_at <= request.requested_at


def outcome(job: Job | None) -> str:
    """What the job did before its worker could act on the request, as faces say it."""
    if job is None:
        return "was gone"
    return {
        JobState.FINISHED: "finished",
        JobState.FAILED: "failed",
        JobState.WAITING: "started waiting for its service",
        JobState.SCHEDULED: "failed and waits for a retry",
        JobState.PENDING: "was given back to its queue",
        JobState.CANCELLED: "was cancelled",
        JobState.LOCKED: "ended that run",
    }[job.state]


def _requested(request: CancelRequest) -> str:
    at = "" if request.requested_at is None else f" at {iso(request.requested_at)}"
    return f"cancel requested{at} by {request.actor}"


def note(request: CancelRequest, what: str) -> str:
    """The line faces show: "cancel requested at T by U — it finished first"."""
    return f"{_requested(request)} — it {what} first"


def standing_note(request: CancelRequest) -> str:
    """The line faces show while the job's worker has not acted on the request yet."""
    return f"{_requested(request)} — its worker stops the job within seconds"


def missed_entry(request: CancelRequest, what: str, now: datetime, face: str) -> AuditEntry:
    return AuditEntry(
        id=None,
        at=now,
        actor=request.actor,
        face=face,
        verb=MISSED,
        selection={"ids": str(request.job_id), "requested_at": iso(request.requested_at) or "", "outcome": what},
        matched=1,
        changed=0,
        skipped=1,
    )


def settle(
    requests: list[CancelRequest],
    job_of: Callable[[JobId], Job | None],
    drop: Callable[[CancelRequest], bool],
    record: Callable[[AuditEntry, list[JobId]], None],
    now: datetime,
    face: str,
    *,
    dry_run: bool = False,
) -> list[CancelRequest]:
    """Drop and audit the requests that no longer stand; the requests settled (with `dry_run`,
    those that would be, nothing written). `drop` is guarded by the request as read: one
    renewed meanwhile (the job was cancelled again) stays."""
    settled: list[CancelRequest] = []
    for request in requests:
        job = job_of(request.job_id)
        if meant_for(request, job):
            continue
        if dry_run:
            settled.append(request)
        elif drop(request):
            # against the job's id as its record is now listed too (on Redis a finished record's)
            touched = (
                [request.job_id] if job is None or str(job.id) == str(request.job_id) else [request.job_id, job.id]
            )
            record(missed_entry(request, outcome(job), now, face), touched)
            settled.append(request)
    return settled
