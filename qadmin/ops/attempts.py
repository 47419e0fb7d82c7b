"""A job's attempt history (`Ops.attempts`): every run kept, and the job document the JSON faces
print with them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qadmin.backends import Backend
from qadmin.job import Job, JobId
from qadmin.model import FROM_COLUMNS, Attempt


def attempts_of(backend: Backend, job_id: JobId | str, now: datetime) -> list[Attempt]:
    """The job's runs, oldest first (`Backend.attempts`); `JobNotFound` for an unknown id."""
    return backend.attempts(backend.parse_id(str(job_id)), now)


def attempts_document(attempts: list[Attempt]) -> list[dict[str, Any]]:
    """The attempts as the JSON faces print them (`Attempt.to_dict`)."""
    return [a.to_dict() for a in attempts]


def from_columns_note(job: Job, attempts: list[Attempt]) -> str | None:
    """What every face says under attempts read from a foreign row's columns: its library keeps
    no history, so only its last run (and the lock of a running one) is known."""
    if not any(a.source == FROM_COLUMNS for a in attempts):
        return None
    return (
        f"read from the {job.format} job's own columns: its library keeps no history of runs, "
        "only the attempt count, the last error and the lock"
    )
