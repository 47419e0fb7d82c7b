"""Reporting back for a waiting job (`qadmin.Waiting`): the external service's verdict, given by
an operator or the service itself through a face (`qadmin complete` / `qadmin fail`, the API),
checked against the job's state and audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from qadmin.backends.base import Backend
from qadmin.errors import InvalidTransition, UsageError
from qadmin.job import DEFAULT_MAX_ATTEMPTS, AuditEntry, Job, JobId, JobState, result_text
from qadmin.model import Stats
from qadmin.ops.waiting_listing import WAITING_LISTED

#: the verbs that end a waiting job, as faces and the audit log name them
REPORT_VERBS = ("complete", "fail")
#: the bulk verbs that act on waiting jobs too: they take them out of where waiting jobs are kept
REMOVING_VERBS = frozenset({"cancel", "delete"})
#: the counts of a queue that has only waiting jobs (as the backends' stats name them)
EMPTY_COUNTS = ("pending", "scheduled", "locked", "stale", "failed", "finished")


def count_waiting(stats: Stats, backend: Backend, now: datetime) -> Stats:
    """The stats with each queue's waiting jobs counted ("waiting" only where there are any, so
    that the counts read as before elsewhere)."""
    for job in backend.waiting_jobs(now, WAITING_LISTED):
        counts = stats.queues.setdefault(job.queue or "", dict.fromkeys(EMPTY_COUNTS, 0))
        counts["waiting"] = counts.get("waiting", 0) + 1
    return stats


def cancel_or_delete(
    backend: Backend, verb: str, ids: Sequence[JobId], states: frozenset[JobState], now: datetime, actor: str
) -> list[JobId]:
    """Cancel or delete these ids (one batch of a bulk verb whose states include waiting): what
    the backend's verb changes, then, of the rest, the jobs waiting for their service (cancelled:
    recorded as cancelled by `actor`, so a report back afterwards is refused)."""
    rest = states - {JobState.WAITING}
    changed: list[JobId] = []
    if rest:
        changed = backend.cancel(ids, now, actor) if verb == "cancel" else backend.delete(ids, now, rest)
    done = {str(i) for i in changed}
    left = [i for i in ids if str(i) not in done]
    if left:
        changed += backend.remove_waiting(left, now, actor if verb == "cancel" else None)
    return changed


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
    if job.state is JobState.CANCELLED:
        # the service reports back after an operator cancelled the job: too late, nothing changes
        by = job.meta.get("cancelled_by") or "an operator"
        when = "" if job.finished_at is None else f" at {job.finished_at.isoformat(timespec='seconds')}"
        raise InvalidTransition(job.id, f"cancelled (by {by}{when}); its report comes too late", verb)
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
