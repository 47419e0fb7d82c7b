"""Waiting jobs on SQL (`qadmin.Waiting`): the row leaves the jobs table for `qadmin_waiting`
(its columns as JSON), so that neither qadmin's nor delayed_job's nor DJJob's claim can see it.
Reported back, it is recorded as finished, or put back (same id) as a failure is; past its
deadline a worker fails it. Each move is one guarded transaction: the first writer wins."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from qadmin.backends.sql.cancel import Cancelling
from qadmin.backends.sql.rows import NO_OWNERS, RowReader
from qadmin.backends.sql.state import Counters
from qadmin.backends.sql.store import Store
from qadmin.backends.sql.values import parse_id
from qadmin.errors import InvalidTransition
from qadmin.job import DEFAULT_MAX_ATTEMPTS, Job, JobId, JobState, retry_after
from qadmin.waiting import timeout_error

#: a JSON object standing for a time in a stored row
TIME = "$time"
#: waiting entries per transaction of a removal
REMOVE_BATCH = 500


def _dump(row: Any) -> str:
    values = {k: ({TIME: v.isoformat()} if isinstance(v, datetime) else v) for k, v in row._mapping.items()}
    return json.dumps(values)


def _load(text: str) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(text)
    return {k: datetime.fromisoformat(v[TIME]) if isinstance(v, dict) and TIME in v else v for k, v in values.items()}


class Waiting:
    def __init__(self, store: Store, rows: RowReader, canceller: Cancelling) -> None:
        self.store = store
        self.rows = rows
        self.canceller = canceller

    def _readable(self) -> bool:
        """Whether `qadmin_waiting` is there to read (a table made since this process looked counts)."""
        if not self.store.has_aux("waiting"):
            self.store.jobs()
            self.store.look_for_aux()
        return self.store.has_aux("waiting")

    def _mine(self, job_id: JobId) -> list[Any]:
        w = self.store.aux["waiting"]
        return [w.c.job_table == self.store.table_name, w.c.job_id == job_id]

    def to_job(self, entry: Any, now: datetime) -> Job:
        job = self.rows.to_job(SimpleNamespace(**_load(entry.row), _mapping=_load(entry.row)), now, NO_OWNERS)
        meta = {**job.meta, "waiting_since": entry.since, "waiting_until": entry.deadline}
        return replace(job, state=JobState.WAITING, locked_at=None, locked_by=None, meta=meta)

    def wait(self, counters: Counters, job: Job, worker: str, now: datetime, until: datetime) -> bool:
        """Move the job this worker holds into the waiting table; False if it no longer holds it."""
        self.store.ensure_aux()
        t, w = self.store.jobs(), self.store.aux["waiting"]
        with counters.outcome(now, processed=0, failed=0) as (conn, _tally):
            taken = self.canceller._take(conn, [parse_id(str(job.id))], t.c.locked_by == worker)
            for row in taken:
                conn.execute(
                    sa.insert(w).values(
                        job_table=self.store.table_name,
                        job_id=row.id,
                        since=now,
                        deadline=until,
                        worker=worker,
                        row=_dump(row),
                    )
                )
        return bool(taken)

    def get(self, job_id: JobId, now: datetime) -> Job | None:
        if not self._readable():
            return None
        w = self.store.aux["waiting"]
        with self.store.read() as conn:
            entry = conn.execute(sa.select(w).where(*self._mine(parse_id(str(job_id))))).first()
        return None if entry is None else self.to_job(entry, now)

    def listing(self, now: datetime, limit: int = 1000) -> list[Job]:
        if not self._readable():
            return []
        w = self.store.aux["waiting"]
        with self.store.read() as conn:
            entries = conn.execute(
                sa.select(w).where(w.c.job_table == self.store.table_name).order_by(w.c.deadline).limit(limit)
            ).all()
        return [self.to_job(e, now) for e in entries]

    def _pop(self, conn: sa.Connection, job_id: JobId) -> Any:
        """The waiting entry taken out, or None when another writer took it first."""
        w = self.store.aux["waiting"]
        entry = conn.execute(sa.select(w).where(*self._mine(job_id))).first()
        if entry is None:
            return None
        gone = conn.execute(sa.delete(w).where(*self._mine(job_id))).rowcount
        return entry if gone else None

    def complete(self, counters: Counters, job_id: JobId, now: datetime, result: str | None) -> Job:
        self.store.ensure_aux()
        key = parse_id(str(job_id))
        f = self.store.aux["finished"]
        with counters.outcome(now, processed=1, failed=0) as (conn, tally):
            entry = self._pop(conn, key)
            if entry is None:
                tally[0] = 0
                raise InvalidTransition(job_id, "not waiting", "complete")
            job = self.to_job(entry, now)
            conn.execute(
                sa.insert(f).values(
                    job_table=self.store.table_name,
                    job_id=key,
                    queue=job.queue,
                    class_name=job.class_name,
                    handler=job.raw,
                    priority=job.priority,
                    attempts=job.attempts,
                    created_at=job.created_at,
                    finished_at=now,
                    runtime=(now - entry.since).total_seconds(),
                    worker=entry.worker,
                )
            )
            if result is not None:
                r = self.store.aux["results"]
                conn.execute(
                    sa.insert(r).values(job_table=self.store.table_name, job_id=key, finished_at=now, result=result)
                )
        return job

    def fail(self, counters: Counters, job_id: JobId, now: datetime, error: str, max_attempts: int) -> Job:
        """Put the row back as a failure of the job leaves it: retried after the backoff, or failed."""
        self.store.ensure_aux()
        key = parse_id(str(job_id))
        t = self.store.jobs()
        with counters.outcome(now, processed=1, failed=1) as (conn, tally):
            entry = self._pop(conn, key)
            if entry is None:
                tally[0] = tally[1] = 0
                raise InvalidTransition(job_id, "not waiting", "fail")
            job = self.to_job(entry, now)
            values = {k: v for k, v in _load(entry.row).items() if k in t.c}
            attempts = int(values.get("attempts") or 0) + 1
            retry_at = retry_after(attempts, job.max_attempts or max_attempts, now)
            values.update(attempts=attempts, locked_at=None, locked_by=None)
            values[self.store.error_col().name] = self.store.dialect.clean_text(error)
            if retry_at is not None:
                values["run_at"] = retry_at
            else:
                values["failed_at"] = now
            if "updated_at" in t.c:
                values["updated_at"] = now
            conn.execute(sa.insert(t).values(**values))
        return job

    def remove(self, ids: Sequence[JobId], now: datetime, cancelled_by: str | None) -> list[JobId]:
        """Delete these waiting entries (each by one writer only), recording each as cancelled by
        `cancelled_by` when given (`Backend.remove_waiting`)."""
        if not self._readable():
            return []
        w = self.store.aux["waiting"]
        keys = [parse_id(str(i)) for i in ids]
        removed: list[JobId] = []
        for start in range(0, len(keys), REMOVE_BATCH):
            with self.store.write() as conn:
                entries = conn.execute(
                    sa.select(w).where(
                        w.c.job_table == self.store.table_name, w.c.job_id.in_(keys[start : start + REMOVE_BATCH])
                    )
                ).all()
                for entry in entries:
                    if not conn.execute(sa.delete(w).where(*self._mine(entry.job_id))).rowcount:
                        continue  # reported back, or expired, meanwhile
                    removed.append(entry.job_id)
                    if cancelled_by is not None:
                        values = _load(entry.row)
                        row = SimpleNamespace(**values, _mapping=values)
                        self.canceller._record(conn, [row], now, cancelled_by, None)
        return removed

    def expire(self, now: datetime, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> list[JobId]:
        """Fail the waiting jobs past their deadline; each by one writer only (`_pop` guards it)."""
        if not self._readable():
            return []
        w = self.store.aux["waiting"]
        with self.store.read() as conn:
            due = conn.execute(
                sa.select(w.c.job_id, w.c.since, w.c.deadline).where(
                    w.c.job_table == self.store.table_name, w.c.deadline <= now
                )
            ).all()
        failed: list[JobId] = []
        for job_id, since, deadline in due:
            try:
                self.fail(Counters(self.store, 0.0), job_id, now, timeout_error(since, deadline), max_attempts)
            except InvalidTransition:  # reported back, or expired by another worker, meanwhile
                continue
            failed.append(job_id)
        return failed
