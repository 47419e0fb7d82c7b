"""The job model: what every backend builds and every face shows. No I/O here."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: A job's address in its backend: an integer row id (SQL) or a stable string (Redis).
JobId = int | str


class JobState(str, enum.Enum):  # noqa: UP042 - str() of a member is its class-qualified name in messages already written
    PENDING = "pending"
    SCHEDULED = "scheduled"
    LOCKED = "locked"
    FAILED = "failed"
    FINISHED = "finished"
    #: removed before it ran, or interrupted while it ran, by an operator (`qadmin cancel`)
    CANCELLED = "cancelled"
    #: handed to an external service by its job (`qadmin.Waiting`), until the service reports back
    WAITING = "waiting"

    def __str__(self) -> str:
        return self.value


#: delayed_job's defaults (docs/compatibility.md §4.3), which qadmin keeps.
DEFAULT_MAX_ATTEMPTS = 25
DEFAULT_MAX_RUN_TIME = 4 * 3600.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def backoff_seconds(attempts: int) -> int:
    """delayed_job's reschedule delay after the `attempts`-th failure: attempts**4 + 5."""
    return attempts**4 + 5


def retry_after(attempts: int, max_attempts: int, now: datetime) -> datetime | None:
    """When a job failed `attempts` times runs again (delayed_job's backoff), None when spent."""
    if attempts >= max_attempts:
        return None
    return now + timedelta(seconds=backoff_seconds(attempts))


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Job:
    """One job as a backend stores it, decoded as far as its format allows.

    `undecodable` carries the reason when the payload could not be decoded; such a job still
    lists (with its `raw` text) and can be deleted or retried, but no worker runs it.
    """

    id: JobId
    queue: str | None
    class_name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    state: JobState = JobState.PENDING
    priority: int = 0
    attempts: int = 0
    run_at: datetime | None = None
    locked_at: datetime | None = None
    locked_by: str | None = None
    failed_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    raw: str = ""
    format: str = "qadmin"
    undecodable: str | None = None
    max_attempts: int | None = None
    stale: bool = False
    #: extra payload fields (php-resque `id`, qadmin `unique`, ...) and backend details
    meta: dict[str, Any] = field(default_factory=dict)
    #: a readable structure of a foreign payload (Ruby object, PHP object) for detail views
    display: Any = None
    #: what a finished job returned, as kept (`result_text`); None when it returned None
    result: str | None = None

    @property
    def decodable(self) -> bool:
        return self.undecodable is None

    @property
    def error_message(self) -> str | None:
        """The first line of the last error: what error groups are keyed by."""
        if not self.last_error:
            return None
        return self.last_error.split("\n", 1)[0]

    @property
    def timeout(self) -> float | None:
        """The time limit the job was enqueued with (qadmin's payload member), in seconds."""
        value = self.meta.get("timeout") if isinstance(self.meta, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf"):
            return float(value)
        return None

    @property
    def kept_result(self) -> dict[str, Any]:
        """What a finished job returned: `{"result": VALUE}`, `{"result_note": WHY}`, or {}."""
        return {} if self.result is None else read_result(self.result)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape every face prints (the README's command-line contract)."""
        out: dict[str, Any] = {
            "id": self.id,
            "queue": self.queue,
            "class": self.class_name,
            "args": self.args,
            "kwargs": self.kwargs,
            "state": self.state.value,
            "priority": self.priority,
            "attempts": self.attempts,
            "run_at": iso(self.run_at),
            "locked_at": iso(self.locked_at),
            "locked_by": self.locked_by,
            "failed_at": iso(self.failed_at),
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
        }
        if self.finished_at is not None:
            out["finished_at"] = iso(self.finished_at)
        if self.state is JobState.CANCELLED:
            out["cancelled_by"] = self.meta.get("cancelled_by")
        if self.stale:
            out["stale"] = True
        timeout = self.timeout
        if timeout is not None:
            out["timeout"] = timeout
        out.update(self.kept_result)
        out["format"] = self.format
        if self.undecodable is not None:
            out["undecodable"] = self.undecodable
            out["raw"] = self.raw
        return out


#: the most a finished job's return value may take as JSON; a bigger one is kept as a note
RESULT_LIMIT = 64 * 1024


def result_text(value: object) -> str | None:
    """What is kept of a job's return value: `{"result": VALUE}` when it is JSON (at most
    `RESULT_LIMIT` bytes), else `{"result_note": WHY}`; None for None. Never raises: a value
    that cannot be kept is noted, and the job has succeeded all the same."""
    if value is None:
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        note = f"not kept: {type(value).__name__} is not JSON ({str(exc)[:200]})"
        return json.dumps({"result_note": note}, ensure_ascii=False)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return json.dumps({"result_note": "not kept: it holds a lone surrogate, which is not text"})
    if size > RESULT_LIMIT:
        return json.dumps({"result_note": f"not kept: {size} bytes of JSON, over {RESULT_LIMIT}"})
    return '{"result":' + text + "}"


def read_result(text: str) -> dict[str, Any]:
    """`result_text`'s JSON read back: `{"result": …}` or `{"result_note": …}` (a note when unreadable)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {"result_note": "unreadable result record"}
    if isinstance(value, dict) and ("result" in value or "result_note" in value):
        return {k: v for k, v in value.items() if k in ("result", "result_note")}
    return {"result_note": "unreadable result record"}


@dataclass(frozen=True)
class NewJob:
    """What a client asks a backend to enqueue."""

    class_name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    priority: int = 0
    run_at: datetime | None = None
    max_attempts: int | None = None
    unique: str | None = None
    #: seconds this job may run, whatever the worker's max run time (stored in its payload)
    timeout: float | None = None


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    host: str
    pid: int
    queues: list[str]
    started_at: datetime | None
    heartbeat_at: datetime | None
    current_job: JobId | None = None
    job_started_at: datetime | None = None
    processed: int = 0
    failed: int = 0
    stale: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "queues": self.queues,
            "started_at": iso(self.started_at),
            "heartbeat_at": iso(self.heartbeat_at),
            "current_job": self.current_job,
            "job_started_at": iso(self.job_started_at),
            "processed": self.processed,
            "failed": self.failed,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class QueueInfo:
    name: str
    counts: dict[str, int]
    paused: bool = False
    oldest_pending_at: datetime | None = None
    #: why the queue cannot be read (a Redis key of the wrong type), None when it can
    unreadable: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "counts": self.counts,
            "paused": self.paused,
            "oldest_pending_at": iso(self.oldest_pending_at),
        }
        if self.unreadable:
            out["unreadable"] = self.unreadable
        return out


@dataclass(frozen=True)
class AuditEntry:
    id: int | str | None
    at: datetime
    actor: str
    face: str
    verb: str
    selection: dict[str, Any]
    matched: int
    changed: int
    skipped: int
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "actor": self.actor,
            "face": self.face,
            "verb": self.verb,
            "selection": self.selection,
            "matched": self.matched,
            "changed": self.changed,
            "skipped": self.skipped,
        }
