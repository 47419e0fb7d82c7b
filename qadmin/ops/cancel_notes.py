"""What a job page says of an operator's cancel that did not stop the job: "cancel requested at T
by U — it finished first" (`backends/cancel_requests.py` tells how such a request is settled).
Read from the open request while it is there, then from its audit entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from qadmin.backends.base import Backend
from qadmin.backends.cancel_requests import MISSED, CancelRequest, meant_for, note, outcome, standing_note
from qadmin.job import AuditEntry, Job

#: the key of `Job.meta` the note is shown under on every face
NOTE_KEY = "cancel_note"


def cancel_note(backend: Backend, job: Job, history: Sequence[AuditEntry]) -> str | None:
    """The note of the latest cancel of this job that did not stop it, or of one its worker has
    not acted on yet; None when there is none. `history` is the job's audit entries, newest first
    (every job page reads them already)."""
    request = backend.cancel_request(job.id)
    if request is not None:
        if meant_for(request, job):
            return standing_note(request)
        return note(request, outcome(job))
    for entry in history:
        if entry.verb == MISSED:
            at = entry.selection.get("requested_at")
            when = datetime.fromisoformat(at) if isinstance(at, str) and at else None
            return note(CancelRequest(job.id, when, entry.actor), str(entry.selection.get("outcome") or "ended"))
    return None


def noted(backend: Backend, job: Job, history: Sequence[AuditEntry]) -> Job:
    """The job with its cancel note in `meta` (`NOTE_KEY`), which every face shows; as it was
    when there is none."""
    found = cancel_note(backend, job, history)
    return job if found is None else replace(job, meta={**job.meta, NOTE_KEY: found})
