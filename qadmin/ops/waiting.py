"""Reporting back for a waiting job (`qadmin.Waiting`): the external service's verdict, given by
an operator or the service itself through a face (`qadmin complete` / `qadmin fail`, the API),
checked against the job's state and audited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qadmin.backends.base import Backend
from qadmin.errors import InvalidTransition, UsageError
from qadmin.filters import JobFilter
from qadmin.job import DEFAULT_MAX_ATTEMPTS, AuditEntry, Job, JobState, result_text
from qadmin.model import Stats

#: the verbs that end a waiting job, as faces and the audit log name them
REPORT_VERBS = ("complete", "fail")
#: a selection of waiting jobs only: read from where waiting jobs are kept
WAITING_ONLY = frozenset({JobState.WAITING})
#: the counts of a queue that has only waiting jobs (as the backends' stats name them)
EMPTY_COUNTS = ("pending", "scheduled", "locked", "stale", "failed", "finished")
#: waiting jobs a listing reads at most
WAITING_LISTED = 10_000


def waiting_jobs(backend: Backend, selection: JobFilter, now: datetime, limit: int) -> list[Job]:
    return [j for j in backend.waiting_jobs(now, WAITING_LISTED) if selection.matches(j)][:limit]


def count_waiting(stats: Stats, backend: Backend, now: datetime) -> Stats:
    """The stats with each queue's waiting jobs counted ("waiting" only where there are any, so
    that the counts read as before elsewhere)."""
    for job in backend.waiting_jobs(now, WAITING_LISTED):
        counts = stats.queues.setdefault(job.queue or "", dict.fromkeys(EMPTY_COUNTS, 0))
        counts["waiting"] = counts.get("waiting", 0) + 1
    return stats


def report_back(
    backend: Backend,
    job: Job,
    verb: str,
    now: datetime,
    actor: str,
    face: str,
    *,
    result: Any = None,
    error: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    dry_run: bool = False,
) -> Job:
    """Complete (with `result`, any JSON value, kept as its return value) or fail (with `error`:
    retried after the backoff, or failed at its last attempt) a waiting job, audited; the job as
    it was while waiting. `InvalidTransition` if it is not waiting."""
    if job.state is not JobState.WAITING:
        raise InvalidTransition(job.id, str(job.state), verb)
    if verb == "fail" and not (error or "").strip():
        raise UsageError("a failure needs an error message (--error TEXT)")
    if dry_run:
        return job
    if verb == "complete":
        done = backend.complete_waiting(job.id, now, result_text(result))
    else:
        done = backend.fail_waiting(job.id, now, error or "", max_attempts)
    backend.record_audit(audit_entry(job, verb, now, actor, face, error), [job.id])
    return done


def audit_entry(job: Job, verb: str, now: datetime, actor: str, face: str, error: str | None) -> AuditEntry:
    details: dict[str, Any] = {"ids": str(job.id)}
    if error is not None:
        details["error"] = error[:500]
    return AuditEntry(
        id=None, at=now, actor=actor, face=face, verb=verb, selection=details, matched=1, changed=1, skipped=0
    )
