"""Edit one job's row: its arguments (qadmin's JSON handler only), queue, priority and run_at,
written only while the row is still as it was read (docs/compatibility.md §4, §5)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.reads import Reads
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import parse_id
from qadmin.codecs import json_codec
from qadmin.errors import InvalidTransition, JobNotFound, UsageError
from qadmin.job import Job, JobId
from qadmin.model import JobEdit, check_edit

#: handler formats qadmin writes itself (JSON): the only ones whose arguments it rewrites
JSON_FORMATS = frozenset({"qadmin", "resque", "php-resque"})


class Edit:
    def __init__(self, store: Store, reads: Reads) -> None:
        self.store = store
        self.reads = reads

    def edit(self, job_id: JobId, changes: JobEdit, now: datetime) -> Job:
        job = self.reads.get(job_id, now)
        check_edit(job, changes)
        t = self.store.jobs()
        row_id = parse_id(str(job.id))
        with self.store.read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == row_id)).first()
        if row is None:
            raise JobNotFound(job.id)
        values = self._values(job, row.handler, changes, t)
        if not values:
            return job
        if "updated_at" in t.c:
            values["updated_at"] = now
        guard = sa.and_(
            t.c.id == row_id,
            t.c.handler == row.handler,
            t.c.locked_at.is_(None),
            t.c.failed_at.is_(None) if row.failed_at is None else t.c.failed_at.is_not(None),
            *(t.c[c] == getattr(row, c) for c in ("queue", "priority") if c in values and getattr(row, c) is not None),
        )
        with self.store.write() as conn:
            changed = conn.execute(sa.update(t).where(guard).values(**values)).rowcount
        if changed != 1:
            raise InvalidTransition(job.id, "changed since it was read", "edit")
        return self.reads.get(job.id, now)

    def _values(self, job: Job, handler: Any, changes: JobEdit, t: sa.Table) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if changes.args is not None or changes.kwargs is not None:
            if job.format not in JSON_FORMATS:
                raise UsageError(f"job {job.id} is a {job.format} job: its arguments cannot be edited by qadmin")
            values["handler"] = _rewritten(handler, changes)
        if changes.queue is not None:
            if "queue" not in t.c:
                raise UsageError(f"job {job.id}: the table {t.name} has no queue column")
            values["queue"] = changes.queue
        if changes.priority is not None:
            if "priority" not in t.c:
                raise UsageError(f"job {job.id}: the table {t.name} has no priority column (a DJJob table)")
            values["priority"] = changes.priority
        if changes.run_at is not None:
            run_at = changes.run_at
            if getattr(t.c.run_at.type, "whole_seconds", False):
                run_at = run_at.replace(microsecond=0)
            values["run_at"] = run_at
        return values


def _rewritten(handler: Any, changes: JobEdit) -> Any:
    """The JSON handler with new `args`/`kwargs`, every other member kept in its place, written
    as qadmin writes handlers (compact, raw UTF-8)."""
    text = handler.decode("utf-8") if isinstance(handler, bytes) else str(handler)
    payload = json.loads(text)
    if changes.args is not None:
        payload["args"] = list(changes.args)
    if changes.kwargs is not None:
        if changes.kwargs:
            payload[json_codec.KWARGS_KEY] = dict(changes.kwargs)
        else:
            payload.pop(json_codec.KWARGS_KEY, None)
    new = json_codec.dumps(payload)
    return new.encode("utf-8") if isinstance(handler, bytes) else new
