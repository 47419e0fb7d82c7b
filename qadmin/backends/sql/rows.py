"""Rows as Jobs: a jobs-table row (read, or as just written) and a finished record, decoded and
put in the state SQL sees them in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from qadmin.backends.sql.values import shown, text_of
from qadmin.codecs import decode_payload
from qadmin.job import Job, JobState

NO_OWNERS: frozenset[str] = frozenset()


class RowReader:
    def __init__(self, max_run_time: float) -> None:
        #: seconds after which a lock counts as stale
        self.max_run_time = max_run_time

    def to_job(self, row: Any, now: datetime, dead: set[str] | frozenset[str]) -> Job:
        handler = row.handler
        decoded = decode_payload(handler if isinstance(handler, (str, bytes)) or handler is None else str(handler))
        raw = text_of(handler) or ""
        mapping = row._mapping
        # a value a column's reader cannot read (a time that is no time, a BLOB queue, a word
        # for a number) makes this job undecodable, naming it; the rest of the row is shown
        unreadable: list[str] = []
        times: dict[str, datetime | None] = {}
        for name in ("run_at", "locked_at", "failed_at", "created_at"):
            value = mapping.get(name)
            if value is not None and not isinstance(value, datetime):
                unreadable.append(f"{name} {shown(value)}")
                value = None
            times[name] = value
        run_at, locked_at, failed_at = times["run_at"], times["locked_at"], times["failed_at"]
        numbers: dict[str, int] = {}
        for name in ("priority", "attempts"):
            value = mapping.get(name)
            if value is not None and (value.__class__ is not int):
                unreadable.append(f"{name} {shown(value)}")
                value = None
            numbers[name] = value or 0
        texts: dict[str, str | None] = {}
        for name in ("queue", "locked_by", "last_error", "error"):
            value = mapping.get(name)
            if value is not None and value.__class__ is not str:
                if name in ("queue", "locked_by"):  # names: text only (a BLOB is no queue name)
                    unreadable.append(f"{name} {shown(value)}")
                value = text_of(value)
            texts[name] = value
        if not isinstance(row.id, int):
            unreadable.append(f"id {shown(row.id)}")
        stale = False
        locked_by = texts["locked_by"]
        # a time that is set but unreadable still says which state the row is in (as SQL sees it)
        if mapping.get("failed_at") is not None:
            state = JobState.FAILED
        elif mapping.get("locked_at") is not None:
            state = JobState.LOCKED
            stale = locked_at is not None and (
                locked_at < now - timedelta(seconds=self.max_run_time) or locked_by in dead
            )
        elif run_at is not None and run_at > now:
            state = JobState.SCHEDULED
        else:
            state = JobState.PENDING
        max_attempts = decoded.meta.get("max_attempts")
        reason = decoded.error
        if unreadable:
            reason = "unreadable " + "; ".join(unreadable) + (f"; {reason}" if reason else "")
        return Job(
            id=row.id,
            queue=texts["queue"],
            class_name=decoded.class_name,
            args=decoded.args,
            kwargs=decoded.kwargs,
            state=state,
            priority=numbers["priority"],
            attempts=numbers["attempts"],
            run_at=run_at,
            locked_at=locked_at,
            locked_by=locked_by,
            failed_at=failed_at,
            last_error=texts["last_error"] if "last_error" in mapping else texts["error"],
            created_at=times["created_at"],
            raw=raw,
            format=decoded.format,
            undecodable=reason,
            max_attempts=max_attempts if isinstance(max_attempts, int) else None,
            stale=stale,
            meta=decoded.meta,
            display=decoded.display,
        )

    def finished_job(self, row: Any) -> Job:
        decoded = decode_payload(row.handler)
        return Job(
            id=row.job_id,
            queue=row.queue,
            class_name=row.class_name or decoded.class_name,
            args=decoded.args,
            kwargs=decoded.kwargs,
            state=JobState.FINISHED if row.cancelled_by is None else JobState.CANCELLED,
            priority=row.priority or 0,
            attempts=row.attempts or 0,
            created_at=row.created_at,
            finished_at=row.finished_at,
            locked_by=row.worker,
            raw=row.handler or "",
            format=decoded.format,
            undecodable=decoded.error,
            meta={"runtime": row.runtime, **decoded.meta}
            if row.cancelled_by is None
            else {"runtime": row.runtime, "cancelled_by": row.cancelled_by, **decoded.meta},
            display=decoded.display,
        )


class Row:
    """A row for `RowReader.to_job`: written (its values) or fetched on the driver (converted by
    `convert` when first read)."""

    def __init__(self, convert: Any, raw: Any = None) -> None:
        if raw is None:
            self._values: dict[str, Any] = convert
        else:
            self._convert: Callable[[Any], dict[str, Any]] = convert
            self._raw = raw

    @property
    def _mapping(self) -> dict[str, Any]:
        try:
            return self._values
        except AttributeError:
            self._values = self._convert(self._raw)
            return self._values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


def mark_locked(job: Job, worker: str, now: datetime) -> Job:
    """`job`, just decoded from its row, as this worker's lock makes it. The Job is the claim's
    own, seen by no one yet: it is set in place rather than copied field by field."""
    for name, value in (("state", JobState.LOCKED), ("locked_at", now), ("locked_by", worker), ("stale", False)):
        object.__setattr__(job, name, value)
    return job
