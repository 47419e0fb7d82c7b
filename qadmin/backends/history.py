"""Attempt history, the part every backend shares: what a failed run's record holds, and a job's
attempts assembled from what is kept (`Backend.attempts`).

A backend keeps one record per run that did not succeed (failed, retried, timed out, rescued),
the latest `ATTEMPTS_KEPT` of a job, numbered by the backend as they are written. A successful or
cancelled run needs no record of its own: its finished record already holds when it ended, how
long it ran and on which worker, and it is the job's last run. A running job's lock says when its
run started and where. A foreign library (delayed_job, DJJob, Resque) keeps no history: what its
row or failure entry holds (attempts, the last error, failed_at, the lock) is shown as attempts
read from its columns (`FROM_COLUMNS`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from qadmin.job import Job, JobState
from qadmin.model import FROM_COLUMNS, RECORDED, Attempt, Outcome

#: runs kept per job, the latest (older ones are dropped as new ones are written)
ATTEMPTS_KEPT = 25
#: characters of a run's error text (message and traceback) kept
ERROR_KEPT = 16_000

#: how a timed-out run's error text begins (`qadmin.worker.running.timeout_error`)
_TIMEOUT = "JobTimeout:"


def failure_outcome(error: str, retry_at: datetime | None) -> Outcome:
    """How a run that raised `error` ended, given whether it is tried again."""
    if error.startswith(_TIMEOUT):
        return Outcome.TIMED_OUT
    return Outcome.RETRIED if retry_at is not None else Outcome.FAILED


def kept_error(error: str | None) -> str | None:
    """The error text as a record keeps it: the first line whole, the traceback cut short."""
    if error is None or len(error) <= ERROR_KEPT:
        return error
    head, _, rest = error.partition("\n")
    return head + "\n" + rest[:ERROR_KEPT] + "\n[... truncated]"


def split_error(text: str | None) -> tuple[str | None, str | None]:
    """(`Class: message`, the traceback) of an error text; the traceback None when there is none."""
    if not text:
        return None, None
    head, _, rest = text.partition("\n")
    rest = rest.strip("\n")
    return head, rest or None


def rescue_error(holder: str, last_beat: datetime | None, rescuer: str) -> str:
    """The error text of a run whose worker died, given back by `rescuer`."""
    since = f"since {last_beat.isoformat(timespec='seconds')}" if last_beat is not None else "ever"
    return f"WorkerDied: worker {holder} stopped (no heartbeat {since}); the job was given back by {rescuer}\n"


def assemble(job: Job, kept: Sequence[Attempt], total: int) -> list[Attempt]:
    """A job's attempts, oldest first: `kept` (the latest recorded runs, numbered, of `total`
    recorded), then the run its finished record describes or the one it is running now; for a job
    no qadmin worker recorded a run of, what its columns say."""
    out = list(kept)
    nxt = max(total, job.attempts) + 1
    if total == 0 and (job.last_error or job.failed_at is not None):
        out.append(_from_columns(job))
    finished = job.state in (JobState.FINISHED, JobState.CANCELLED)
    if finished and job.locked_by is not None and job.finished_at is not None:
        runtime = job.meta.get("runtime") if isinstance(job.meta, dict) else None
        seconds = float(runtime) if isinstance(runtime, (int, float)) and not isinstance(runtime, bool) else None
        out.append(
            Attempt(
                number=nxt,
                outcome=Outcome.COMPLETED if job.state is JobState.FINISHED else Outcome.CANCELLED,
                started_at=Attempt.span(job.finished_at, seconds),
                finished_at=job.finished_at,
                worker=job.locked_by,
            )
        )
    elif job.state is JobState.WAITING:  # handed to an external service, until it reports back
        out.append(Attempt(number=nxt, outcome=Outcome.WAITING, started_at=_moment(job.meta.get("waiting_since"))))
    elif job.state is JobState.LOCKED and job.locked_by is not None:
        source = RECORDED if total or job.format == "qadmin" else FROM_COLUMNS
        out.append(
            Attempt(number=nxt, outcome=Outcome.RUNNING, started_at=job.locked_at, worker=job.locked_by, source=source)
        )
    return out


def _from_columns(job: Job) -> Attempt:
    """The last failed run as a foreign row's columns (or a Resque failure entry) hold it."""
    error, backtrace = split_error(job.last_error)
    if job.state is JobState.FAILED or job.failed_at is not None:
        outcome = Outcome.FAILED
    else:
        outcome = failure_outcome(job.last_error or "", job.run_at)
    worker = job.meta.get("worker") if isinstance(job.meta, dict) else None
    return Attempt(
        number=job.attempts or None,
        outcome=outcome,
        finished_at=job.failed_at,
        worker=worker if isinstance(worker, str) else None,
        error=error,
        backtrace=backtrace,
        source=FROM_COLUMNS,
    )


def _moment(value: object) -> datetime | None:
    """A time as a backend's meta holds it: a datetime (SQL) or ISO 8601 text (Redis)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
